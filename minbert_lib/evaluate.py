"""Metrics, the overall multitask score, confusion matrices and prediction files.

    accuracy(gold, predicted)              # SST, Quora (and CFIMDB)
    macro_f1(gold, predicted)              # SST: every class counts the same, however rare
    pearson(gold, predicted)               # STS: correlation of predicted with gold similarity
    scores = MultitaskScores(sst_accuracy=0.52, sst_macro_f1=0.49, quora_accuracy=0.87, sts_pearson=0.85)
    scores.mean_score                      # plain mean of the three (the report's "overall")
    scores.leaderboard_score               # mean(SST, Quora, (STS + 1) / 2) (the newer leaderboard)

Gold labels come first in every function, as in scikit-learn. Which metrics judge which task is in
tasks.TASKS (`get_task("sts").metrics(gold, predicted)`).

Prediction files (`write_predictions` / `read_predictions`) are comma-separated
UTF-8 with exactly two columns and this header:

    id,prediction
    a7d575c9ed86ea9633660c67e,3
    33cfa32975091f471e3a19656,2

one row per example of the split, ids as in the data file, predictions as the
task's label type (an int class for SST, Quora and CFIMDB; a float similarity for STS).
"""
from __future__ import annotations

import csv
import math
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

PREDICTION_HEADER = ("id", "prediction")


def _as_arrays(gold, predicted) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs (lists, numpy arrays, CPU tensors) as 1-D arrays of the same, non-zero length."""
    gold, predicted = np.asarray(gold).reshape(-1), np.asarray(predicted).reshape(-1)
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if len(gold) == 0:
        raise ValueError("no examples to score")
    return gold, predicted


def accuracy(gold, predicted) -> float:
    """Share of examples whose predicted class equals the gold class."""
    gold, predicted = _as_arrays(gold, predicted)
    return float(np.mean(gold == predicted))


def confusion_matrix(gold, predicted, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts: row = gold class, column = predicted class."""
    gold, predicted = _as_arrays(gold, predicted)
    for name, values in (("gold", gold), ("predicted", predicted)):
        if values.min() < 0 or values.max() >= num_classes:
            raise ValueError(f"{name} classes must lie in 0..{num_classes - 1}, got {values.min()}..{values.max()}")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (gold.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix


def macro_f1(gold, predicted) -> float:
    """Unweighted mean over classes of F1 = 2 * precision * recall / (precision + recall).

    The classes are those that occur in `gold` or `predicted`; a class never predicted
    (or never correctly predicted) has F1 0.
    """
    gold, predicted = _as_arrays(gold, predicted)
    scores = []
    for label in np.union1d(gold, predicted):
        true_pos = np.sum((predicted == label) & (gold == label))
        # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted as label + gold label)
        scores.append(2 * true_pos / (np.sum(predicted == label) + np.sum(gold == label)))
    return float(np.mean(scores))


def pearson(gold, predicted) -> float:
    """Pearson correlation of predicted with gold scores.

    Undefined when either side is constant (zero variance); we return 0.0 then, since a
    constant prediction carries no linear information, and the overall score stays a number.
    """
    gold, predicted = _as_arrays(gold, predicted)
    gold, predicted = gold.astype(np.float64), predicted.astype(np.float64)
    gold_centered, predicted_centered = gold - gold.mean(), predicted - predicted.mean()
    denominator = math.sqrt(np.sum(gold_centered ** 2) * np.sum(predicted_centered ** 2))
    if denominator == 0.0:
        return 0.0
    return float(np.sum(gold_centered * predicted_centered) / denominator)


@dataclass(frozen=True)
class MultitaskScores:
    """Dev-set scores of the three tasks and the two overall scores built from them."""

    sst_accuracy: float
    sst_macro_f1: float
    quora_accuracy: float
    sts_pearson: float

    @property
    def mean_score(self) -> float:
        """Plain mean of SST accuracy, Quora accuracy and STS Pearson: the report's overall score."""
        return (self.sst_accuracy + self.quora_accuracy + self.sts_pearson) / 3

    @property
    def leaderboard_score(self) -> float:
        """mean(SST accuracy, Quora accuracy, (STS Pearson + 1) / 2): the newer CS224N leaderboard
        formula, which maps Pearson from -1..1 onto 0..1 like the two accuracies."""
        return (self.sst_accuracy + self.quora_accuracy + (self.sts_pearson + 1) / 2) / 3

    def as_dict(self) -> dict[str, float]:
        """All scores by name, the two overall scores included (for history files and tables)."""
        return {"sst_accuracy": self.sst_accuracy, "sst_macro_f1": self.sst_macro_f1,
                "quora_accuracy": self.quora_accuracy, "sts_pearson": self.sts_pearson,
                "mean_score": self.mean_score, "leaderboard_score": self.leaderboard_score}

    def summary(self) -> str:
        """The scores on a few labelled lines."""
        return "\n".join([
            f"SST accuracy {self.sst_accuracy:.3f} (macro-F1 {self.sst_macro_f1:.3f})",
            f"Quora accuracy {self.quora_accuracy:.3f}",
            f"STS Pearson {self.sts_pearson:.3f}",
            f"overall, plain mean (as in the report): {self.mean_score:.3f}",
            f"overall, leaderboard formula mean(SST, Quora, (STS+1)/2): {self.leaderboard_score:.3f}",
        ])


def prediction_filename(task: str, split: str, partial: bool = False) -> str:
    """The file name of a task's predictions on a split, e.g. `sst-dev-predictions.csv`; predictions for
    part of the split only are named so, e.g. `sst-test-partial-predictions.csv`."""
    return f"{task}-{split}{'-partial' if partial else ''}-predictions.csv"


def _format_prediction(value) -> str:
    """An int class as `3`; a float score in the shortest form that reads back exactly."""
    value = value.item() if hasattr(value, "item") else value  # numpy / torch scalars
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"prediction {value!r} is not an int class or a float score")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"prediction {value} is not a finite number")
    return repr(value)


def current_umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_predictions(path: str | Path, ids: Sequence[str], predictions) -> Path:
    """Write the `id,prediction` file atomically (a crash never leaves half a file) and return its path."""
    path = Path(path)
    predictions = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    if len(ids) != len(predictions):
        raise ValueError(f"{path}: {len(ids)} ids but {len(predictions)} predictions")
    repeated = [example_id for example_id, count in Counter(ids).items() if count > 1]
    if repeated:
        raise ValueError(f"{path}: {len(repeated)} id(s) occur more than once, e.g. {repeated[0]!r}")
    if not all(ids):
        raise ValueError(f"{path}: an id is empty")
    rows = [(example_id, _format_prediction(value)) for example_id, value in zip(ids, predictions)]
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~current_umask())  # mkstemp makes 0600: readable by others, as other files
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(PREDICTION_HEADER)
            writer.writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def read_predictions(path: str | Path) -> dict[str, int | float]:
    """The predictions of an `id,prediction` file by id; a ValueError names the file and line of a bad row."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != PREDICTION_HEADER:
            raise ValueError(f"{path}, line 1: header {header} should be {','.join(PREDICTION_HEADER)}")
        predictions = {}
        for row in reader:
            if len(row) != 2 or not row[0]:
                raise ValueError(f"{path}, line {reader.line_num}: expected `id,prediction`, got {row}")
            if row[0] in predictions:
                raise ValueError(f"{path}, line {reader.line_num}: id {row[0]!r} occurs a second time")
            try:
                value = int(row[1]) if row[1].lstrip("-").isdigit() else float(row[1])
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise ValueError(f"{path}, line {reader.line_num}: {row[1]!r} is not a finite number")
            predictions[row[0]] = value
    return predictions
