"""How a task's dev score grows with the number of its training examples.

The mirror's quora-train.csv is partial (13,507 of 141,506 pairs); SST's train file is complete
(8,544 sentences). This measurement trains one task's head of the `best` recipe alone (mean
pooling, the same heads and learning rates, no MNR pass) on nested random subsets of its train
file, 1/8, 1/4, 1/2 and all of it, and scores each run's best model on all of that task's dev
set, so that the gain per doubling of the data can be read off.

    python results/data_curve.py --task quora --data-dir ../shared/data
    python results/data_curve.py --task sst --data-dir ../shared/data

writes runs/<task>-curve/e<epochs>-seed<seed>/<examples>/ (ordinary run folders) and
results/<task>-data-curve.md.
Finished runs are kept: run it again to rebuild the table, or after an interruption.

SST alone is the report's BL schedule. For Quora this script makes one extra schedule ("quora-only": one
pass over Quora per epoch) and hands it to `train`, with its experiment and budgets; it registers nothing,
and the kit's own schedules, experiments and budgets are unchanged.
Checkpoints are still chosen by the plain mean of the three dev scores, as in every run.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from minbert_lib.build import TrainSettings, train
from minbert_lib.data import load_split
from minbert_lib.experiments import BUDGETS, EXPERIMENTS, Experiment
from minbert_lib.runs import finished, load_best_scores, load_minutes
from minbert_lib.schedules import Schedule

TASK_NAMES = {"quora": "Quora", "sst": "SST"}
SCORE_KEYS = {"quora": "quora_accuracy", "sst": "sst_accuracy"}
DEV_SIZES = {"quora": "20,212", "sst": "1,101"}                  # usable dev rows


def quora_epoch(streams):
    """One pass over Quora."""
    quora = streams["quora"]
    quora.start_new_pass()
    for _ in range(quora.batches_per_pass):
        yield {"quora": quora.next_batch()}


QUORA_ONLY = Schedule(tasks=("quora",), epoch=quora_epoch,
                      steps_per_epoch=lambda streams: streams["quora"].batches_per_pass)


def single_task_experiment(task: str) -> Experiment:
    """The best recipe trained on `task` alone (its schedule: "quora-only" or BL)."""
    return dataclasses.replace(
        EXPERIMENTS["best"], name=f"{task.upper()}-ONLY", description=f"the best recipe's {task} head alone",
        schedule={"quora": "quora-only", "sst": "BL"}[task], mnr=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASK_NAMES), required=True)
    parser.add_argument("--data-dir", help="folder with the CS224N data files")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="the Markdown table (default: results/<task>-data-curve.md)")
    args = parser.parse_args()

    experiment = single_task_experiment(args.task)
    schedule = QUORA_ONLY if args.task == "quora" else None  # None: the experiment's named schedule (BL)
    task_name = TASK_NAMES[args.task]
    full = len(load_split(args.task, "train", args.data_dir))  # 13,507 Quora pairs in the mirror, 8,544 SST sentences
    rows = []
    for size in (full // 8, full // 4, full // 2, full):
        budget = dataclasses.replace(BUDGETS["cpu"], name=f"{args.task}-{size}", train_limit=size)
        run_dir = Path(f"runs/{args.task}-curve/e{args.epochs}-seed{args.seed}") / str(size)
        if not finished(run_dir, args.epochs):
            settings = TrainSettings(experiment=experiment.name, budget=budget.name, seed=args.seed,
                                     data_dir=args.data_dir, run_dir=str(run_dir), epochs=args.epochs)
            train(settings, experiment=experiment, budget=budget, schedule=schedule)
        scores = load_best_scores(run_dir)
        rows.append(f"| {size:,} | {scores[SCORE_KEYS[args.task]]:.3f} | {load_minutes(run_dir):.1f} |")

    table = "\n".join([
        f"The {task_name} head alone, `best` recipe without MNR, {args.epochs} epochs, seed {args.seed}; "
        f"accuracy of the best model on all {DEV_SIZES[args.task]} {task_name} dev examples.",
        "", f"| {task_name} train examples | {task_name} dev acc | minutes |", "|---:|---:|---:|", *rows, ""])
    out = Path(args.out or f"results/{args.task}-data-curve.md")
    out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
