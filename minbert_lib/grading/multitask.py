"""Grading of 05_multitask: the three heads, the task losses, BL / TM1 / TM2, Pearson, confusion."""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F

from minbert_lib.grading import drive
from minbert_lib.grading import sentiment as _sentiment  # noqa: F401  (registers classifier_softmax)
from minbert_lib.grading.common import (MISTAKES, CheckError, call_function, case, compare, compare_train_mode,
                                        module_outputs, outputs_of, randomize_, register, result_of, type_name)
from minbert_lib.multitask import NUM_SENTIMENT_CLASSES, MultitaskHeads
from minbert_lib.schedules import SCHEDULES, TaskStream
from minbert_lib.tasks import get_task

ASSIGNMENT = "05_multitask"

register({
    "heads_softmax": "the sentiment head returns probabilities (softmax): return the 5 raw logits",
    "paraphrase_sigmoid": "the paraphrase head returns a probability (sigmoid): return the raw logit, since "
                          "binary_cross_entropy_with_logits applies the sigmoid itself",
    "heads_swapped": "the similarity score came from the paraphrase layer: each task has its own linear layer, "
                     "self.paraphrase for Quora and self.similarity for STS",
    "heads_no_dropout": "dropout is never applied: in training mode every head's input goes through self.dropout",
    "heads_dropout_wrong_place": "in training mode (same random seed as the reference) the output differs "
                                 "although the eval-mode output is right: apply self.dropout once, to the "
                                 "head's input (u, or the concatenated [u, v]), before the linear layer",
    "bce_sigmoid_twice": "the paraphrase loss applied a sigmoid to the logits before "
                         "binary_cross_entropy_with_logits, which applies it again",
    "sts_loss_l1": "the similarity loss is the mean absolute error: the report trains STS with the mean "
                   "squared error, F.mse_loss",
    "tm1_no_restart": "TM1 did not restart the streams: every TM1 epoch starts every dataset afresh, "
                      "stream.start_new_pass() for each stream before the first step",
    "tm1_smallest": "TM1 ran as many steps as the smallest dataset has batches: TM1 runs through the "
                    "largest dataset, max(stream.batches_per_pass ...)",
    "tm2_restarts": "TM2 restarted the streams every epoch: in TM2 the datasets resume where they stopped, "
                    "so never call start_new_pass() in tm2_epoch",
    "tm2_largest": "TM2 ran as many steps as the largest dataset has batches: TM2 stops after the smallest "
                   "dataset's number of batches, min(stream.batches_per_pass ...)",
    "baseline_all_tasks": "the baseline trained on more than SST: BL's steps hold only {'sst': batch}",
    "pearson_not_centered": "the means were not subtracted: Pearson's r is the cosine of the *centred* vectors, "
                            "x - x.mean() and y - y.mean()",
    "pearson_covariance": "this is the covariance: divide by both standard deviations (or use the norms of "
                          "the centred vectors) to get a correlation in [-1, 1]",
    "loss_not_decreasing": "the training loss did not go down: does every step call zero_grad, backward "
                           "and step on the sum of the tasks' losses?",
    "confusion_transposed": "the confusion matrix is transposed: rows are the gold classes, columns the "
                            "predicted ones, matrix[gold, predicted] += 1",
})


# --- cases --------------------------------------------------------------------------------

def multitask_heads_case(seed: int, batch: int = 4, hidden_size: int = 8) -> dict:
    g = torch.Generator().manual_seed(seed)
    reference = randomize_(MultitaskHeads(hidden_size), g)
    u, v = torch.randn(batch, hidden_size, generator=g), torch.randn(batch, hidden_size, generator=g)
    with torch.no_grad():
        return {"hidden_size": hidden_size, "state": reference.state_dict(), "u": u, "v": v,
                "sentiment": reference.sentiment_logits(u), "paraphrase": reference.paraphrase_logits(u, v),
                "similarity": reference.similarity_scores(u, v)}


def task_losses_case(seed: int, batch: int = 6) -> dict:
    """Model outputs and labels of each task, and the reference loss of each."""
    g = torch.Generator().manual_seed(seed)
    outputs = {"sst": 2 * torch.randn(batch, NUM_SENTIMENT_CLASSES, generator=g),
               "quora": 2 * torch.randn(batch, generator=g),
               "sts": 5 * torch.rand(batch, generator=g)}
    labels = {"sst": torch.randint(0, NUM_SENTIMENT_CLASSES, (batch,), generator=g),
              "quora": torch.randint(0, 2, (batch,), generator=g),
              "sts": 5 * torch.rand(batch, generator=g)}
    return {"outputs": outputs, "labels": labels,
            "losses": {task: get_task(task).loss(outputs[task], labels[task]) for task in outputs}}


def seeded_plan(size: int, batch_size: int, seed: int):
    """plan_for_pass(p): the batches of pass p over `size` examples, shuffled by a seed of its own."""
    def plan_for_pass(pass_index: int) -> list[list[int]]:
        order = torch.randperm(size, generator=torch.Generator().manual_seed(1000 * seed + pass_index)).tolist()
        return [order[i:i + batch_size] for i in range(0, size, batch_size)]
    return plan_for_pass


SCHEDULE_SIZES = {"sst": 14, "quora": 23, "sts": 8}


def make_streams(sizes: dict, batch_size: int, seed: int, tasks=None) -> dict[str, TaskStream]:
    """Fresh task streams of a schedule case, at the start of their first pass."""
    return {task: TaskStream(seeded_plan(size, batch_size, seed + index))
            for index, (task, size) in enumerate(sizes.items()) if tasks is None or task in tasks}


def run_schedule(epoch_fn, streams: dict, epochs: int) -> list[list[dict]]:
    """Every epoch's steps ({task: batch of indices}) of a schedule function, as plain lists."""
    return [[{task: [int(i) for i in batch] for task, batch in step.items()} for step in epoch_fn(streams)]
            for _ in range(epochs)]


def schedule_case(seed: int, sizes: dict | None = None, batch_size: int = 3, epochs: int = 3) -> dict:
    """Task sizes, batch size and the exact steps of BL, TM1 and TM2 over `epochs` epochs."""
    c = {"seed": seed, "sizes": dict(sizes or SCHEDULE_SIZES), "batch_size": batch_size, "epochs": epochs}
    c["expected"] = {
        name: run_schedule(SCHEDULES[name].epoch,
                           make_streams(c["sizes"], batch_size, seed, SCHEDULES[name].tasks), epochs)
        for name in ("BL", "TM1", "TM2")}
    return c


def metrics_case(seed: int, n: int = 40, num_classes: int = 5) -> dict:
    """Gold and predicted classes and similarity scores, with the reference Pearson r and confusion matrix."""
    from minbert_lib.evaluate import confusion_matrix, pearson

    g = torch.Generator().manual_seed(seed)
    gold = torch.randint(0, num_classes, (n,), generator=g)
    noise = torch.randint(-1, 2, (n,), generator=g)
    predicted = (gold + noise).clamp(0, num_classes - 1)  # mostly right or one class off
    gold_scores = 5 * torch.rand(n, generator=g)
    predicted_scores = 0.5 * gold_scores + 1.0 + torch.randn(n, generator=g)
    return {"gold": gold, "predicted": predicted, "num_classes": num_classes,
            "confusion": torch.from_numpy(confusion_matrix(gold.numpy(), predicted.numpy(), num_classes)),
            "gold_scores": gold_scores, "predicted_scores": predicted_scores,
            "pearson": torch.tensor(pearson(gold_scores.numpy(), predicted_scores.numpy()))}


CASES = {
    "multitask_heads": partial(multitask_heads_case, 0),
    "task_losses": partial(task_losses_case, 0),
    "schedules": partial(schedule_case, 0),
    "metrics": partial(metrics_case, 0),
}


# --- drivers --------------------------------------------------------------------------------

def schedule_run(epoch_fn, sizes: dict, batch_size: int, seed: int, epochs: int, tasks=None) -> list:
    """Driver: fresh task streams of the given sizes, and every step of `epochs` calls of epoch_fn."""
    streams = make_streams(sizes, batch_size, seed, None if tasks is None else tuple(tasks))
    return run_schedule(epoch_fn, streams, epochs)


# --- checks ---------------------------------------------------------------------------------

HEAD_METHODS = (("sentiment_logits", "sentiment", 1), ("paraphrase_logits", "paraphrase", 2),
                ("similarity_scores", "similarity", 2))


def check_multitask_heads(cls, seed: int | None = None, **shape) -> None:
    """cls(hidden_size, dropout) with sentiment_logits(u), paraphrase_logits(u, v), similarity_scores(u, v)."""
    c = case("multitask_heads", multitask_heads_case, seed, **shape)
    H, u, v = c["hidden_size"], c["u"], c["v"]
    calls = [(method, [u, v][:n], {}) for method, _, n in HEAD_METHODS]
    actual = outputs_of(cls, drive(module_outputs, cls, [H], {"dropout": 0.3}, c["state"], calls), c["state"])
    trained = outputs_of(cls, drive(module_outputs, cls, [H], {"dropout": 0.3}, c["state"], calls,
                                    train=True, seed=5), c["state"])
    ref = MultitaskHeads(H, dropout=0.3)
    ref.load_state_dict(c["state"])
    ref.eval()
    with torch.no_grad():
        pair = torch.cat([u, v], dim=-1)  # (B, 2H)
        compare("sentiment_logits", actual[0], c["sentiment"], {"heads_softmax": c["sentiment"].softmax(dim=-1)})
        compare("paraphrase_logits", actual[1], c["paraphrase"], {"paraphrase_sigmoid": c["paraphrase"].sigmoid()})
        compare("similarity_scores", actual[2], c["similarity"],
                {"heads_swapped": ref.paraphrase(pair).squeeze(-1)})
        ref.train()
        for (method, key, n), got in zip(HEAD_METHODS, trained):
            torch.manual_seed(5)
            expected = getattr(ref, method)(*[u, v][:n])
            compare_train_mode(f"{method} in training mode", got, expected, {"heads_no_dropout": c[key]},
                               "heads_dropout_wrong_place")


def check_task_loss(fn, seed: int | None = None, **shape) -> None:
    """fn(task, outputs, labels) -> the task's loss: cross-entropy, BCE with logits, MSE."""
    c = case("task_losses", task_losses_case, seed, **shape)
    outputs, labels = c["outputs"], c["labels"]
    mistakes = {"quora": {"bce_sigmoid_twice": F.binary_cross_entropy_with_logits(
                    outputs["quora"].sigmoid(), labels["quora"].float())},
                "sst": {"classifier_softmax": F.cross_entropy(outputs["sst"].softmax(dim=-1), labels["sst"])},
                "sts": {"sts_loss_l1": F.l1_loss(outputs["sts"], labels["sts"])}}
    for task in ("sst", "quora", "sts"):
        what = f"task_loss({task!r})"
        actual = result_of(what, drive(call_function, fn, task, outputs[task], labels[task]),
                           ("task", "outputs", "labels"))
        if isinstance(actual, torch.Tensor) and actual.dim() != 0:
            raise CheckError(f"{what}: return one number, the mean over the batch (a 0-d tensor), "
                             f"not shape {tuple(actual.shape)}")
        compare(what, actual, c["losses"][task], mistakes[task])


def _mistaken_schedules() -> dict[str, dict]:
    """The common schedule mistakes, as epoch functions keyed by the schedule they get wrong."""
    def steps(streams, count):
        for _ in range(count):
            yield {task: stream.next_batch() for task, stream in streams.items()}

    def tm1_no_restart(streams):
        yield from steps(streams, max(s.batches_per_pass for s in streams.values()))

    def tm1_smallest(streams):
        for stream in streams.values():
            stream.start_new_pass()
        yield from steps(streams, min(s.batches_per_pass for s in streams.values()))

    def tm2_restarts(streams):
        for stream in streams.values():
            stream.start_new_pass()
        yield from steps(streams, min(s.batches_per_pass for s in streams.values()))

    def tm2_largest(streams):
        yield from steps(streams, max(s.batches_per_pass for s in streams.values()))

    return {"TM1": {"tm1_no_restart": tm1_no_restart, "tm1_smallest": tm1_smallest},
            "TM2": {"tm2_restarts": tm2_restarts, "tm2_largest": tm2_largest}, "BL": {}}


def _describe_steps(steps: list[list[dict]]) -> str:
    return f"{len(steps)} epochs of {[len(epoch) for epoch in steps]} steps"


def check_schedule(name: str, epoch_fn, seed: int | None = None, **options) -> None:
    """epoch_fn(streams) yields one epoch's steps {task: batch}; over several epochs they must be exactly
    the reference's, batch for batch."""
    c = case("schedules", schedule_case, seed, **options)
    tasks = ["sst"] if name == "BL" else None
    args = (c["sizes"], c["batch_size"], c["seed"], c["epochs"], tasks)
    try:
        actual = drive(schedule_run, epoch_fn, *args)
    except (TypeError, AttributeError) as err:
        raise CheckError(f"{name}: the epoch function must yield dicts {{task: batch}} ({err})") from None
    expected = c["expected"][name]
    if actual == expected:
        return
    if not isinstance(actual, list):
        raise CheckError(f"{name}: the epoch function must yield dicts {{task: batch}}, got {type_name(actual)}")
    if name == "BL" and any(set(step) != {"sst"} for epoch in actual for step in epoch):
        raise CheckError(f"{name}: {MISTAKES['baseline_all_tasks']}")
    for mistake, wrong_fn in _mistaken_schedules()[name].items():
        if actual == schedule_run(wrong_fn, *args):
            raise CheckError(f"{name}: {MISTAKES[mistake]}")
    for epoch, (got, want) in enumerate(zip(actual, expected), start=1):
        if got != want:
            where = next((i for i, (a, b) in enumerate(zip(got, want), start=1) if a != b), min(len(got), len(want)) + 1)
            raise CheckError(f"{name}: epoch {epoch} has {len(got)} steps (the reference {len(want)}), and they "
                             f"first differ at step {where}; sizes {c['sizes']} in batches of {c['batch_size']}")
    raise CheckError(f"{name}: expected {_describe_steps(expected)}, got {_describe_steps(actual)}")


def check_pearson(fn, seed: int | None = None, **shape) -> None:
    """fn(gold (N,), predicted (N,)) -> Pearson's r as a 0-d tensor or float."""
    c = case("metrics", metrics_case, seed, **shape)
    x, y = c["gold_scores"], c["predicted_scores"]
    xc, yc = x - x.mean(), y - y.mean()
    actual = result_of("pearson", drive(call_function, fn, x, y), ("gold", "predicted"))
    if isinstance(actual, (int, float)):
        actual = torch.tensor(float(actual), dtype=torch.float64)
    if isinstance(actual, torch.Tensor) and actual.numel() == 1:
        actual = actual.reshape(())
    compare("pearson", actual, c["pearson"], {
        "pearson_not_centered": F.cosine_similarity(x, y, dim=0),
        "pearson_covariance": (xc * yc).mean(),
    })


def check_confusion_matrix(fn, seed: int | None = None, **shape) -> None:
    """fn(gold (N,), predicted (N,), num_classes) -> (C, C) counts, row = gold, column = predicted."""
    c = case("metrics", metrics_case, seed, **shape)
    actual = result_of("confusion_matrix", drive(call_function, fn, c["gold"], c["predicted"], c["num_classes"]),
                       ("gold", "predicted", "num_classes"))
    if isinstance(actual, (list, tuple)):
        actual = torch.as_tensor(actual)
    if isinstance(actual, torch.Tensor):
        actual = actual.to(torch.int64)
    compare("confusion_matrix", actual, c["confusion"],
            {"confusion_transposed": c["confusion"].T}, atol=0, rtol=0)  # counts: exact


def check_loss_decreases(epoch_losses: list[dict[str, float]], what: str = "training loss") -> None:
    """The summed per-task training loss of the last epoch must be below that of the first."""
    if len(epoch_losses) < 2:
        raise CheckError(f"{what}: need the losses of at least two epochs, got {len(epoch_losses)}")
    totals = [sum(losses.values()) for losses in epoch_losses]
    if not all(math.isfinite(total) for total in totals):
        raise CheckError(f"{what}: the loss became NaN or inf ({totals}): is the learning rate too large?")
    if not totals[-1] < totals[0]:
        raise CheckError(f"{what} went from {totals[0]:.3f} (epoch 1) to {totals[-1]:.3f} "
                         f"(epoch {len(totals)}): {MISTAKES['loss_not_decreasing']}")
