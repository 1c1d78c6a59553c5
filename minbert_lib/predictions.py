"""A multitask model's predictions: scores on a split while training, prediction files at the end of a run.

    ids, labels = predict(model, "sst", dataset, batch_size=32, device=device, use_bf16=False)
    result = score_split(model, datasets, "dev", 32, device, False)   # scores, confusion, predictions
    write_best_predictions(run_dir, model, datasets, budget, device, False)

The metrics themselves (accuracy, Pearson, the overall score) and the file format are in evaluate.py.
Test predictions of a budget that cuts the test files (quick) are named `<task>-test-partial-predictions.csv`,
and `partial-predictions.txt` says how much of each file they cover.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from minbert_lib.batching import TaskDataset, batch_to
from minbert_lib.evaluate import MultitaskScores, confusion_matrix, prediction_filename, write_predictions
from minbert_lib.multitask import MultitaskBert
from minbert_lib.runs import write_json
from minbert_lib.tasks import get_task

PARTIAL_NOTE = "partial-predictions.txt"


def predict_batch(model: MultitaskBert, task: str, batch: dict) -> torch.Tensor:
    """(B,) predictions as the data's label type: SST class, Quora 0/1, STS score in [0, 5]."""
    definition = get_task(task)
    return definition.predict(model.task_outputs(definition, batch))


@torch.no_grad()
def predict(model: MultitaskBert, task: str, dataset: TaskDataset, batch_size: int, device, use_bf16: bool,
            indices: list[int] | None = None) -> tuple[list[str], list]:
    """(ids, predictions) for the dataset (or the given indices), in length-sorted batches."""
    model.eval()
    indices = list(range(len(dataset))) if indices is None else indices
    indices = sorted(indices, key=lambda i: dataset.lengths[i])  # little padding
    ids, predictions = [], []
    for start in range(0, len(indices), batch_size * 2):
        batch = dataset.collate([dataset[i] for i in indices[start:start + batch_size * 2]])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            predictions += predict_batch(model, task, batch_to(batch, device)).cpu().tolist()
        ids += batch["ids"]
    return ids, predictions


def score_split(model, datasets: dict, split: str, batch_size: int, device, use_bf16: bool,
                sample: dict[str, list[int]] | None = None) -> dict:
    """Metrics of every task of `datasets` on a split (or on fixed samples of it) as {"sst_accuracy": ...},
    the overall scores of the report's three tasks, confusion matrices, and the predictions themselves
    ({task: (ids, predictions)})."""
    scores, confusions, predictions = {}, {}, {}
    for task in datasets:
        dataset = datasets[task][split]
        indices = sample[task] if sample else None
        ids, predicted = predict(model, task, dataset, batch_size, device, use_bf16, indices)
        predictions[task] = (ids, predicted)
        gold_by_id = dict(zip(dataset.ids, dataset.labels))
        gold = [gold_by_id[i] for i in ids]
        definition = get_task(task)
        scores.update({f"{task}_{name}": value for name, value in definition.metrics(gold, predicted).items()})
        if definition.num_classes is not None:
            confusions[task] = confusion_matrix(gold, predicted, definition.num_classes).tolist()
    overall = MultitaskScores(scores["sst_accuracy"], scores["sst_macro_f1"], scores["quora_accuracy"],
                              scores["sts_pearson"])
    return {"scores": {**overall.as_dict(), **scores}, "confusion": confusions, "predictions": predictions}


def fixed_sample(datasets: dict, split: str, size: int | None, seed: int) -> dict[str, list[int]] | None:
    """Sorted indices of a seeded random sample of `size` examples of each task (None: all of them)."""
    if size is None:
        return None
    rng = np.random.default_rng(seed)
    return {t: sorted(rng.permutation(len(datasets[t][split]))[:size].tolist()) for t in datasets}


def write_best_predictions(run_dir: Path, model, datasets: dict, budget, device, use_bf16: bool,
                           totals: dict | None = None) -> None:
    """Reload best.pt; score it on all of dev; write predictions, confusion matrices and best-dev-scores.json.
    `totals` ({(task, split): rows before the budget's cut}) tells partial test files from whole ones."""
    state = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    dev = score_split(model, datasets, "dev", budget.batch_size, device, use_bf16)
    notes = []
    for task in datasets:
        write_predictions(run_dir / prediction_filename(task, "dev"), *dev["predictions"][task])
        test = datasets[task]["test"]
        if test is not None:
            total = (totals or {}).get((task, "test"), len(test))
            ids, predictions = predict(model, task, test, budget.batch_size, device, use_bf16)
            name = prediction_filename(task, "test", partial=len(test) < total)
            write_predictions(run_dir / name, ids, predictions)
            if len(test) < total:
                notes.append(f"{name}: {len(test):,} of the {total:,} examples of {task}-test (the {budget.name} "
                             f"budget's limit; {prediction_filename(task, 'dev')} covers {len(datasets[task]['dev']):,} "
                             f"of {(totals or {}).get((task, 'dev'), 0):,} dev examples)")
    if notes:
        (run_dir / PARTIAL_NOTE).write_text(
            "These prediction files cover part of their split only: not for submission. Train with the cpu or "
            "paper budget for complete files.\n" + "\n".join(notes) + "\n", encoding="utf-8")
    write_json(run_dir / "confusion.json", dev["confusion"])
    write_json(run_dir / "best-dev-scores.json", dev["scores"])
