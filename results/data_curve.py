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

SST alone is the report's BL schedule. For Quora this script registers one extra schedule
("quora-only": one pass over Quora per epoch) for itself only; the kit's own schedules are unchanged.
Checkpoints are still chosen by the plain mean of the three dev scores, as in every run.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from minbert_lib import experiments, schedules, train
from minbert_lib.data import load_split

TASK_NAMES = {"quora": "Quora", "sst": "SST"}
SCORE_KEYS = {"quora": "quora_accuracy", "sst": "sst_accuracy"}
DEV_SIZES = {"quora": "20,212", "sst": "1,101"}                  # usable dev rows


def quora_epoch(streams):
    """One pass over Quora."""
    quora = streams["quora"]
    quora.start_new_pass()
    for _ in range(quora.batches_per_pass):
        yield {"quora": quora.next_batch()}


def register_quora_only() -> None:
    schedules.SCHEDULES["quora-only"] = quora_epoch
    tasks_of, steps_of = train.schedule_tasks, train.steps_per_epoch
    train.schedule_tasks = lambda name: ("quora",) if name == "quora-only" else tasks_of(name)
    train.steps_per_epoch = (lambda name, streams: streams["quora"].batches_per_pass if name == "quora-only"
                             else steps_of(name, streams))


def register_single_task_experiment(task: str) -> str:
    """The best recipe trained on `task` alone; returns the experiment's name."""
    if task == "quora":
        register_quora_only()
    name = f"{task.upper()}-ONLY"  # experiment names are upper case (get_experiment upper-cases them)
    experiments.EXPERIMENTS[name] = dataclasses.replace(
        experiments.EXPERIMENTS["best"], name=name, description=f"the best recipe's {task} head alone",
        schedule={"quora": "quora-only", "sst": "BL"}[task], mnr=False)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASK_NAMES), required=True)
    parser.add_argument("--data-dir", help="folder with the CS224N data files")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="the Markdown table (default: results/<task>-data-curve.md)")
    args = parser.parse_args()

    experiment = register_single_task_experiment(args.task)
    task_name = TASK_NAMES[args.task]
    full = len(load_split(args.task, "train", args.data_dir))  # 13,507 Quora pairs in the mirror, 8,544 SST sentences
    rows = []
    for size in (full // 8, full // 4, full // 2, full):
        preset = f"{args.task}-{size}"
        experiments.PRESETS[preset] = dataclasses.replace(experiments.PRESETS["cpu"], name=preset, train_limit=size)
        run_dir = Path(f"runs/{args.task}-curve/e{args.epochs}-seed{args.seed}") / str(size)
        if not train.finished(run_dir, args.epochs):
            train.train(train.TrainSettings(experiment=experiment, preset=preset, seed=args.seed,
                                            data_dir=args.data_dir, run_dir=str(run_dir), epochs=args.epochs))
        scores = train.load_best_scores(run_dir)
        rows.append(f"| {size:,} | {scores[SCORE_KEYS[args.task]]:.3f} | {train.load_minutes(run_dir):.1f} |")

    table = "\n".join([
        f"The {task_name} head alone, `best` recipe without MNR, {args.epochs} epochs, seed {args.seed}; "
        f"accuracy of the best model on all {DEV_SIZES[args.task]} {task_name} dev examples.",
        "", f"| {task_name} train examples | {task_name} dev acc | minutes |", "|---:|---:|---:|", *rows, ""])
    out = Path(args.out or f"results/{args.task}-data-curve.md")
    out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
