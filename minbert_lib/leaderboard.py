"""Prediction files in the CS224N starter's format, for its leaderboard.

The kit writes `<task>-<split>-predictions.csv` files with an `id,prediction` header
(minbert_lib.evaluate). The CS224N default final project's starter code
(gpoesia/minbert-default-final-project, `evaluation.py`, `test_model_multitask`; default
paths from `multitask_classifier.py`, `get_args`) writes, instead, one file per task and split:

    predictions/sst-dev-output.csv    predictions/sst-test-output.csv
    predictions/para-dev-output.csv   predictions/para-test-output.csv
    predictions/sts-dev-output.csv    predictions/sts-test-output.csv

each with the header line `id \\t Predicted_Sentiment ` (`Predicted_Is_Paraphrase`,
`Predicted_Similiary`: the starter's spelling) and rows `{id} , {prediction} `: the
spaces, the tab in the header and the comma in the rows are the starter's own. Sentiment
classes are written as integers, paraphrase predictions as floats (0.0 / 1.0, from
`sigmoid().round()`), similarity scores as floats. `export_leaderboard` converts a run's
files to these names and this format.

    export_leaderboard("runs/best-cpu-seed0", "predictions")
"""
from __future__ import annotations

from pathlib import Path

from minbert_lib.errors import MinbertError
from minbert_lib.evaluate import prediction_filename as prediction_file, read_predictions
from minbert_lib.tasks import TASKS, get_task

SPLITS = ("dev", "test")


def starter_tasks() -> list[str]:
    """The tasks the starter writes prediction files for (Task.starter), in the task table's order."""
    return [name for name, task in TASKS.items() if task.starter is not None]


def starter_name(task: str, split: str) -> str:
    """The starter's default file name for a task's predictions, e.g. `para-test-output.csv`."""
    return f"{get_task(task).starter.prefix}-{split}-output.csv"


def starter_value(task: str, value: int | float) -> str:
    """A prediction as the starter writes it: SST an int class, Quora a float 0.0/1.0, STS a float."""
    if get_task(task).starter.integers:
        return str(int(value))
    return repr(float(value))


def write_starter_file(path: Path, task: str, predictions: dict[str, int | float]) -> Path:
    header = get_task(task).starter.column
    lines = [f"id \t {header} \n"] + [f"{example_id} , {starter_value(task, value)} \n"
                                      for example_id, value in predictions.items()]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def export_leaderboard(run_dir: str | Path, out: str | Path) -> tuple[list[Path], list[str]]:
    """Write the run's prediction files into `out` in the starter's format; (written, notes on skipped ones)."""
    run_dir, out = Path(run_dir), Path(out)
    if not run_dir.is_dir():
        raise MinbertError(f"{run_dir} is not a folder: give a run folder written by minbert train")
    found = [(task, split) for task in starter_tasks() for split in SPLITS
             if (run_dir / prediction_file(task, split)).is_file()]
    if not found:
        raise MinbertError(f"{run_dir} holds no prediction files (<task>-<split>-predictions.csv): they are written "
                           "when a minbert train run finishes")
    if out.exists() and not out.is_dir():
        raise MinbertError(f"--out {out} is a file: give a folder for the prediction files")
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    for task in starter_tasks():
        for split in SPLITS:
            if (task, split) not in found:
                skipped.append(f"{starter_name(task, split)}: skipped, the run has no {prediction_file(task, split)}")
                continue
            try:
                predictions = read_predictions(run_dir / prediction_file(task, split))
            except ValueError as err:
                raise MinbertError(str(err)) from None
            written.append(write_starter_file(out / starter_name(task, split), task, predictions))
    return written, skipped
