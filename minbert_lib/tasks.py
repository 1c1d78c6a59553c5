"""The task table: what each task reads, what its head outputs, how it is trained and scored. Declared once.

    task = get_task("sst")
    task.parse_label("4")                # -> 4: labels typed as the task's kind (class or score)
    task.loss(logits, labels)            # the training loss of the head's outputs
    task.predict(logits)                 # (B,) predictions as the data's label type
    task.metrics(gold, predicted)        # {"accuracy": ..., "macro_f1": ...}
    task.floor(dev_labels)               # what a constant prediction scores on task.metric_key

The report trains and scores three tasks (REPORT_TASKS); CFIMDB, which the course data also holds, is
read and scored like a binary SST. To add a task, declare a `Task` in TASKS (its files go in
registry.FILES when they are upstream files, else `Task.files` names them): `MultitaskBert` builds a
head for it, and the trainer, evaluation, curves and prediction files take it from there when a
`Schedule` trains it (tests/test_tasks.py trains a fourth task with the tiny model).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import torch

from minbert_lib.evaluate import accuracy, macro_f1, pearson
from minbert_lib.losses import paraphrase_loss, sentiment_loss, similarity_loss
from minbert_lib.registry import FILES, SPLITS, DataFile

METRICS: dict[str, Callable] = {"accuracy": accuracy, "macro_f1": macro_f1, "pearson": pearson}


@dataclass(frozen=True)
class StarterFormat:
    """How the CS224N starter writes a task's prediction files (leaderboard.py): `<prefix>-<split>-output.csv`
    with `column` in the header, values as integers (class ids) or else as floats."""

    prefix: str                        # "para" for Quora
    column: str                        # "Predicted_Similiary" for STS: the starter's spelling
    integers: bool = False


@dataclass(frozen=True)
class Task:
    """One task of the kit and everything that differs between tasks."""

    name: str                          # as on the command line and in file and metric names: "sst"
    title: str                         # for people: "SST-5 sentiment"
    text_columns: tuple[str, ...]      # one column: a sentence per example; two: a sentence pair
    label_column: str                  # absent from test files
    num_classes: int | None            # labels are classes 0..n-1; None: a real score in [0, max_score]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (head outputs, labels) -> mean loss
    metric_names: tuple[str, ...]      # keys of METRICS; the first is drawn in the curves with its floor
    head: str                          # MultitaskBert's head for it: sentiment | paraphrase | similarity,
                                       # or "own": a linear head the model builds for this task
    output_size: int = 1               # values the head gives per example: n logits, else 1 logit or score
    max_score: float = 5.0             # scores only: predictions are clamped to [0, max_score]
    files: dict[str, str] = field(default_factory=dict)  # split -> file name, for files not in registry.FILES
    starter: StarterFormat | None = None  # its files in the CS224N starter's format; None: the starter has none

    @property
    def pairs(self) -> bool:
        """True when each example is a sentence pair."""
        return len(self.text_columns) == 2

    @property
    def metric_key(self) -> str:
        """The name of the task's first metric in score dicts and history files: "sst_accuracy"."""
        return f"{self.name}_{self.metric_names[0]}"

    def data_file(self, split: str) -> DataFile:
        """The file of one split: its registry entry, or one of `files` (row count unknown)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
        if split in self.files:
            return DataFile(self.files[split], self.name, split, rows=0)
        return next(f for f in FILES if f.task == self.name and f.split == split)

    def parse_label(self, text: str) -> int | float:
        """The typed label from its text in a data file; a ValueError says why it is invalid."""
        text = text.strip()
        if not text:
            raise ValueError("empty label")
        value = float(text)  # Quora writes its classes as 0.0 / 1.0
        if self.num_classes is None:
            if not 0.0 <= value <= self.max_score:
                raise ValueError(f"{self.label_column} {text} outside 0..{self.max_score:g}")
            return value
        if not value.is_integer() or not 0 <= value < self.num_classes:
            raise ValueError(f"label {text} is not one of {list(range(self.num_classes))}")
        return int(value)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """(B,) predictions from the head's outputs: the likeliest class, logit > 0, or the clamped score."""
        if self.num_classes is None:
            return outputs.float().clamp(0.0, self.max_score)
        if self.output_size == 1:
            return (outputs > 0).long()  # one logit: sigmoid(logit) > 0.5
        return outputs.argmax(-1)        # (B, n) -> (B,)

    def metrics(self, gold, predicted) -> dict[str, float]:
        """{metric name: value} of predictions against gold labels."""
        return {name: METRICS[name](gold, predicted) for name in self.metric_names}

    def floor(self, labels) -> float:
        """What predicting one constant scores on these labels: the most frequent class's share (accuracy),
        or 0 (a constant has no correlation)."""
        if self.num_classes is None:
            return 0.0
        return max(Counter(labels).values()) / len(labels)


TASKS: dict[str, Task] = {task.name: task for task in (
    Task("sst", "SST-5 sentiment", ("sentence",), "sentiment", num_classes=5, loss=sentiment_loss,
         metric_names=("accuracy", "macro_f1"), head="sentiment", output_size=5,
         starter=StarterFormat("sst", "Predicted_Sentiment", integers=True)),
    Task("quora", "Quora paraphrase detection", ("sentence1", "sentence2"), "is_duplicate", num_classes=2,
         loss=paraphrase_loss, metric_names=("accuracy",), head="paraphrase",
         starter=StarterFormat("para", "Predicted_Is_Paraphrase")),  # floats 0.0 / 1.0: sigmoid().round()
    Task("sts", "STS-B similarity", ("sentence1", "sentence2"), "similarity", num_classes=None,
         loss=similarity_loss, metric_names=("pearson",), head="similarity",
         starter=StarterFormat("sts", "Predicted_Similiary")),
    Task("cfimdb", "CFIMDB binary sentiment", ("sentence",), "sentiment", num_classes=2, loss=sentiment_loss,
         metric_names=("accuracy", "macro_f1"), head="own", output_size=2),
)}

REPORT_TASKS = ("sst", "quora", "sts")  # what the report's schedules train and every run is scored on


def get_task(name: str) -> Task:
    """The task of this name; a ValueError names the tasks there are."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name]


def task_loss(task: str, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean loss of one task's batch: 'sst' (B, 5) logits, 'quora' (B,) logits, 'sts' (B,) scores
    (notebook 05's exercise)."""
    return get_task(task).loss(outputs, labels)
