"""Does bf16 autocast cost dev accuracy? The same short training in fp32 and in bf16, three seeds.

Row M0 (the SST baseline) on 4,000 SST training sentences, one epoch, batch 32, lr 5e-5,
max length 64; dev scores on the first 1,101 examples of each dev set (all of SST dev).
The difference between the dtypes is compared with the spread between seeds.

    python benchmarks/bench_bf16_accuracy.py [--seeds 0,1,2] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from benchmarks.common import machine_header, write_report
from minbert_lib.build import TrainSettings, train
from minbert_lib.experiments import Budget
from minbert_lib.runs import load_best_scores

CHECK = Budget("bf16-check", epochs=1, batch_size=32, lr=5e-5, max_length=64, train_limit=4000,
               dev_limit=1101, train_eval_sample=200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data-dir", default=None, help="the data folder (default: $MINBERT_DATA_DIR or data/)")
    parser.add_argument("--out", default="benchmarks/results/bf16-accuracy.md")
    args = parser.parse_args()

    seeds = [int(s) for s in args.seeds.split(",")]
    accuracy: dict[bool, list[float]] = {False: [], True: []}
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for seed in seeds:
        for bf16 in (False, True):
            with tempfile.TemporaryDirectory() as run_dir:
                started = time.perf_counter()
                train(TrainSettings(experiment="M0", budget=CHECK.name, seed=seed, run_dir=run_dir,
                                    data_dir=args.data_dir, bf16=bf16, progress=False), budget=CHECK)
                seconds[bf16].append(time.perf_counter() - started)
                accuracy[bf16].append(load_best_scores(run_dir)["sst_accuracy"])

    lines = machine_header("SST dev accuracy after the same training in fp32 and in bf16 autocast")
    lines += ["| dtype | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd over seeds | run time (median) |",
              "|---|" + "---:|" * (len(seeds) + 3)]
    for bf16, values in accuracy.items():
        lines.append(f"| {'bf16' if bf16 else 'fp32'} | " + " | ".join(f"{v:.3f}" for v in values)
                     + f" | {statistics.mean(values):.3f} | {statistics.stdev(values):.3f} "
                     f"| {statistics.median(seconds[bf16]):.0f} s |")
    differences = [b - f for f, b in zip(accuracy[False], accuracy[True])]
    lines += ["", f"bf16 - fp32, per seed: {', '.join(f'{d:+.3f}' for d in differences)} "
              f"(mean {statistics.mean(differences):+.3f})."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
