"""How Quora dev accuracy grows with the number of Quora training pairs.

The mirror's quora-train.csv is partial (13,507 of 141,506 pairs). This measurement trains the
`best` recipe's Quora head alone (mean pooling, scaled cosine, the same learning rates, no MNR
pass) on nested random subsets of that file and scores each run's best model on all of Quora
dev, so that the gain per doubling of the data can be read off.

    python results/quora_data_curve.py --data-dir ../shared/data

writes runs/quora-curve/<pairs>/ (ordinary run folders) and results/quora-data-curve.md.
Finished runs are kept: run it again to rebuild the table, or after an interruption.

It registers one extra schedule ("QO": one pass over Quora per epoch) and one experiment
("QONLY") for this script only; the kit's own schedules and experiments are unchanged.
Checkpoints are still chosen by the plain mean of the three dev scores, as in every run; SST
and STS are untrained here, so that choice follows the Quora and STS scores.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from minbert_lib import experiments, schedules, train

SUBSET_SIZES = (1688, 3376, 6753, 13507)   # 1/8, 1/4, 1/2 and all of the mirror's file


def quora_epoch(streams):
    """One pass over Quora."""
    quora = streams["quora"]
    quora.start_new_pass()
    for _ in range(quora.batches_per_pass):
        yield {"quora": quora.next_batch()}


def register_quora_only() -> None:
    schedules.SCHEDULES["QO"] = quora_epoch
    tasks_of, steps_of = train.schedule_tasks, train.steps_per_epoch
    train.schedule_tasks = lambda name: ("quora",) if name == "QO" else tasks_of(name)
    train.steps_per_epoch = (lambda name, streams: streams["quora"].batches_per_pass if name == "QO"
                             else steps_of(name, streams))
    best = experiments.EXPERIMENTS["best"]
    experiments.EXPERIMENTS["QONLY"] = dataclasses.replace(
        best, name="QONLY", description="the best recipe's Quora head alone", schedule="QO", mnr=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the CS224N data files")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/quora-data-curve.md")
    args = parser.parse_args()

    register_quora_only()
    rows = []
    for size in SUBSET_SIZES:
        preset = f"q{size}"
        experiments.PRESETS[preset] = dataclasses.replace(experiments.PRESETS["cpu"], name=preset, train_limit=size)
        run_dir = Path("runs/quora-curve") / str(size)
        if not (run_dir / "best-dev-scores.json").exists():
            train.train(train.TrainSettings(experiment="QONLY", preset=preset, seed=args.seed, data_dir=args.data_dir,
                                            run_dir=str(run_dir), epochs=args.epochs))
        scores = train.load_best_scores(run_dir)
        rows.append(f"| {size:,} | {scores['quora_accuracy']:.3f} | {train.load_minutes(run_dir):.1f} |")

    table = "\n".join([
        f"Quora head alone, `best` recipe without MNR, {args.epochs} epochs, seed {args.seed}; "
        "Quora dev accuracy of the best model on all 20,212 dev pairs.",
        "", "| Quora train pairs | Quora dev acc | minutes |", "|---:|---:|---:|", *rows, ""])
    Path(args.out).write_text(table)
    print(table)


if __name__ == "__main__":
    main()
