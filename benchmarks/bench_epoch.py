"""One epoch of the `cpu` multitask budget: padding, real-token throughput, wall time.

With length bucketing (the trainer's sampler) and without it (random batches), on the same
model and data: the share of real tokens over the whole epoch's batches (counted, not
sampled), and the real tokens per second of training steps measured in alternating chunks.
The epoch's wall time is projected from that rate; --full trains the whole bucketed epoch
and measures it.

    python benchmarks/bench_epoch.py [--experiment M1] [--steps 30] [--full] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from tqdm import tqdm

from benchmarks.common import machine_header, write_report
from minbert_lib.batching import BucketBatchSampler, token_counts
from minbert_lib.build import (TrainSettings, build_datasets, build_model, load_examples, make_lr_schedule,
                               make_optimizer)
from minbert_lib.device import bf16_supported, seed_everything
from minbert_lib.experiments import get_budget, get_experiment
from minbert_lib.schedules import Schedule, TaskStream, named_schedule
from minbert_lib.tokenizer import Tokenizer
from minbert_lib.train import Learner, StepLoss, train_step

# pool_batches: None = the trainer's sampler as it is; a pool of one batch sorts nothing
SAMPLERS = {"bucketed": None, "random batches": 1}


def epoch_steps(datasets: dict, schedule: Schedule, batch_size: int, pool_batches: int | None) -> list[dict]:
    """Every step of the first epoch: [{task: indices}]."""
    pool = {} if pool_batches is None else {"pool_batches": pool_batches}
    streams = {task: TaskStream(BucketBatchSampler(datasets[task]["train"].lengths, batch_size, seed=0,
                                                   **pool).batches)
               for task in schedule.tasks}
    return list(schedule.epoch(streams))


def step_token_counts(datasets: dict, step: dict) -> tuple[int, int]:
    """(real, padded) tokens of one step over all its tasks."""
    counts = [token_counts(datasets[task]["train"], indices) for task, indices in step.items()]
    return sum(real for real, _ in counts), sum(padded for _, padded in counts)


def run_steps(learner: Learner, steps) -> float:
    """Seconds the trainer's optimizer steps on these steps' batches take."""
    started = time.perf_counter()
    for step in steps:
        train_step(learner, step)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="M1", help="a row with the TM1 schedule trains all three tasks")
    parser.add_argument("--data-dir", default=None, help="the data folder (default: $MINBERT_DATA_DIR or data/)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per sampler")
    parser.add_argument("--full", action="store_true", help="also train the whole bucketed epoch")
    parser.add_argument("--out", default="benchmarks/results/epoch.md")
    args = parser.parse_args()

    experiment, budget = get_experiment(args.experiment), get_budget("cpu")
    seed_everything(0)
    tokenizer = Tokenizer.from_pretrained("minilm-l6")
    datasets = build_datasets(load_examples(args.data_dir, budget, seed=0), experiment, budget, tokenizer)
    settings = TrainSettings(experiment=args.experiment, budget="cpu", data_dir=args.data_dir)
    model = build_model(settings, experiment, budget, tokenizer).train()
    optimizer = make_optimizer(model, budget.lr)
    use_bf16 = budget.bf16 and bf16_supported(torch.device("cpu"))
    schedule = named_schedule(experiment.schedule)
    learner = Learner(model, StepLoss(model, experiment), optimizer, make_lr_schedule(optimizer, "constant", 1),
                      {task: datasets[task]["train"] for task in schedule.tasks}, torch.device("cpu"), use_bf16)

    plans = {name: epoch_steps(datasets, schedule, budget.batch_size, pool) for name, pool in SAMPLERS.items()}
    counts = {name: [step_token_counts(datasets, step) for step in steps] for name, steps in plans.items()}
    run_steps(learner, plans["bucketed"][:3])  # warm-up

    chunk = max(1, args.steps // 3)
    rates = {name: [] for name in plans}  # real tokens per second, one value per chunk
    for round_number in range(3):
        for name, steps in plans.items():
            picked = range(3 + round_number * chunk, 3 + (round_number + 1) * chunk)
            seconds = run_steps(learner, [steps[i] for i in picked])
            rates[name].append(sum(counts[name][i][0] for i in picked) / seconds)

    lines = machine_header(f"One `cpu` epoch of {args.experiment} ({experiment.schedule}, batch "
                           f"{budget.batch_size}, max length {budget.max_length}, bf16 {use_bf16})")
    lines += ["| sampler | steps | real tokens | real share | real tokens/s (median of 3 chunks) | "
              "projected epoch |", "|---|---:|---:|---:|---:|---:|"]
    for name, per_step in counts.items():
        real = sum(r for r, _ in per_step)
        padded = sum(p for _, p in per_step)
        rate = statistics.median(rates[name])
        lines.append(f"| {name} | {len(per_step)} | {real:,} | {real / padded:.1%} | {rate:,.0f} "
                     f"| {real / rate / 60:.1f} min |")
    lines += ["", f"Timed: {3 * chunk} steps per sampler in 3 alternating chunks, after 3 warm-up steps; "
              "the projection divides the epoch's real tokens by the measured rate."]
    if args.full:
        steps = plans["bucketed"]
        started = time.perf_counter()
        run_steps(learner, tqdm(steps, desc="full bucketed epoch"))
        minutes = (time.perf_counter() - started) / 60
        lines += ["", f"Full bucketed epoch, trained: {minutes:.1f} min "
                  f"({sum(r for r, _ in counts['bucketed']) / (minutes * 60):,.0f} real tokens/s)."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
