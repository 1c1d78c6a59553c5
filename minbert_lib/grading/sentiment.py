"""Grading of 04_sentiment: mean pooling, the classifier, one training step, freezing, accuracy."""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from minbert_lib.config import BertConfig, model_config
from minbert_lib.grading import drive
from minbert_lib.grading.common import (MISTAKES, CheckError, call_function, case, compare, compare_train_mode, module_outputs,
                                        outputs_of, random_attention_mask, randomize_, register, result_of,
                                        type_name)
from minbert_lib.model import BertModel, mean_pool
from minbert_lib.multitask import NUM_SENTIMENT_CLASSES, SentimentClassifier

ASSIGNMENT = "04_sentiment"

register({
    "mean_pool_padding": "the padding positions were averaged in: multiply the hidden states by the mask and "
                         "divide by each sentence's number of real tokens, mask.sum(1), not by T",
    "mean_pool_sum": "the real tokens' hidden states were summed, not averaged: divide by the number of real tokens",
    "classifier_softmax": "the classifier returns probabilities (softmax): return the raw logits, since "
                          "F.cross_entropy applies log-softmax itself",
    "classifier_cls_token": "the classifier read the [CLS] token's hidden state: mean-pool the real tokens' "
                            "hidden states with your mean_pool",
    "classifier_no_mask": "the encoder ran without the attention mask, so real tokens attended to padding: "
                          "pass attention_mask to self.encoder",
    "classifier_no_dropout": "dropout is never applied: in training mode the pooled vector must go through "
                             "self.dropout before the linear layer",
    "classifier_dropout_wrong_place": "in training mode (same random seed as the reference) the logits differ "
                                      "although the eval-mode logits are right: apply self.dropout once, to the "
                                      "pooled vector, just before self.classifier",
    "train_step_no_backward": "no gradient reached the parameters: call loss.backward() before optimizer.step()",
    "train_step_no_step": "the parameters did not change: call optimizer.step() after loss.backward()",
    "train_step_no_zero_grad": "the gradients of the previous step were added to this step's: call "
                               "optimizer.zero_grad() before loss.backward()",
    "train_step_softmax_loss": "the loss was computed on softmax probabilities: F.cross_entropy expects the "
                               "logits (it applies log-softmax itself)",
    "frozen_still_training": "a frozen parameter still trains: model.eval() and torch.no_grad() do not freeze "
                             "weights; set requires_grad = False on every parameter to freeze",
    "freeze_head_too": "the classification head was frozen too: only the encoder's parameters get "
                       "requires_grad = False, the head must keep learning",
    "single_class_predictions": "the model predicts the same class for every sentence, so it learned only "
                                "which class is most frequent: train longer or with a larger learning rate",
})


# --- cases --------------------------------------------------------------------------------

def tiny_encoder(seed: int, vocab_size: int = 64) -> BertModel:
    """A randomized 2-layer encoder of hidden size 32: fast enough to train in a check."""
    g = torch.Generator().manual_seed(seed)
    config = model_config("tiny", vocab_size=vocab_size, max_position_embeddings=16)
    return randomize_(BertModel(config), g)


def random_token_batch(generator: torch.Generator, batch: int, length: int, vocab_size: int) -> dict:
    """input_ids (B, T) with pad id 0 after each sequence's end, and the attention mask."""
    attention_mask = random_attention_mask(generator, batch, length)
    input_ids = torch.randint(1, vocab_size, (batch, length), generator=generator) * attention_mask
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def mean_pool_case(seed: int, batch: int = 3, length: int = 6, hidden_size: int = 8) -> dict:
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, length, hidden_size, generator=g)  # (B, T, H)
    attention_mask = random_attention_mask(g, batch, length)
    return {"hidden": hidden, "attention_mask": attention_mask, "pooled": mean_pool(hidden, attention_mask)}


def sentiment_classifier_case(seed: int, batch: int = 4, length: int = 7) -> dict:
    """A tiny classifier's weights, a padded batch and its logits (eval mode: no dropout)."""
    reference = randomize_(SentimentClassifier(tiny_encoder(seed)), torch.Generator().manual_seed(seed + 1))
    g = torch.Generator().manual_seed(seed + 2)
    c = {"config": reference.encoder.config.to_dict(), "state": reference.state_dict(),
         **random_token_batch(g, batch, length, reference.encoder.config.vocab_size)}
    with torch.no_grad():
        c["logits"] = reference(c["input_ids"], c["attention_mask"])  # (B, 5)
    return c


def overfit_case(seed: int, batch: int = 8, length: int = 6) -> dict:
    """One batch of random sentences with labels: a working train_step learns it by heart."""
    g = torch.Generator().manual_seed(seed)
    encoder = tiny_encoder(seed)
    return {"config": encoder.config.to_dict(), "state": encoder.state_dict(),
            **random_token_batch(g, batch, length, encoder.config.vocab_size),
            "labels": torch.randint(0, NUM_SENTIMENT_CLASSES, (batch,), generator=g)}


CASES = {
    "mean_pool": partial(mean_pool_case, 0),
    "sentiment_classifier": partial(sentiment_classifier_case, 0),
    "overfit": partial(overfit_case, 0),
}


# --- drivers --------------------------------------------------------------------------------

def _tiny_classifier(config: dict, encoder_state: dict, seed: int) -> nn.Module:
    """A classifier without dropout on the case's tiny encoder, its head seeded.

    It is the kit's SentimentClassifier, not the student's: a driver gets one student definition
    (the step, or the freezing function) and plain data, and a mistake in the student's classifier
    belongs to that classifier's own test, not to the step's or the freezing's."""
    encoder = BertModel(BertConfig(**{**config, "hidden_dropout": 0.0, "attention_dropout": 0.0}))
    encoder.load_state_dict(encoder_state)
    torch.manual_seed(seed)
    return SentimentClassifier(encoder, dropout=0.0).train()


def _weights(model: nn.Module) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _grads(model: nn.Module) -> dict:
    return {name: None if p.grad is None else p.grad.detach().clone() for name, p in model.named_parameters()}


def train_step_run(train_step, config: dict, encoder_state: dict, seed: int, input_ids, attention_mask,
                   labels, steps: int, lr: float) -> dict:
    """Driver: a tiny classifier (no dropout) and torch's AdamW(lr, no decay); run the student's
    train_step `steps` times on one batch. Returns the weights at the start, after steps 1 and 2 and
    at the end, the gradients left after steps 1 and 2, and every returned loss."""
    model = _tiny_classifier(config, encoder_state, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    record = {"start": _weights(model), "losses": [], "after": [], "grads": []}
    for step in range(steps):
        loss = train_step(model, optimizer, input_ids.clone(), attention_mask.clone(), labels.clone())
        record["losses"].append(float(loss) if isinstance(loss, (int, float)) or
                                isinstance(loss, torch.Tensor) and loss.numel() == 1
                                else {"unsupported_type": type(loss).__name__})
        if step < 2:
            record["after"].append(_weights(model))
            record["grads"].append(_grads(model))
    record["end"] = _weights(model)
    return record


def freeze_run(freeze_fn, config: dict, encoder_state: dict, seed: int, input_ids, attention_mask,
               labels) -> dict:
    """Driver: freeze_fn on a tiny classifier, then one step of torch's AdamW (lr 1e-2) on the
    trainable parameters. Returns the trainable names, the submodules left in eval mode, and the
    weights before and after the step."""
    model = _tiny_classifier(config, encoder_state, seed)
    freeze_fn(model)
    record = {"trainable": sorted(n for n, p in model.named_parameters() if p.requires_grad),
              "eval_modules": sorted(n for n, m in model.named_modules() if not m.training),
              "start": _weights(model)}
    trainable = [p for p in model.parameters() if p.requires_grad]
    if trainable:
        optimizer = torch.optim.AdamW(trainable, lr=1e-2)
        F.cross_entropy(model(input_ids, attention_mask), labels).backward()
        optimizer.step()
    record["end"] = _weights(model)
    return record


# --- checks ---------------------------------------------------------------------------------

def check_mean_pool(fn, seed: int | None = None, **shape) -> None:
    """fn(hidden (B, T, H), attention_mask (B, T)) -> (B, H), the mean over each sentence's real tokens."""
    c = case("mean_pool", mean_pool_case, seed, **shape)
    hidden, mask = c["hidden"], c["attention_mask"]
    actual = result_of("mean_pool", drive(call_function, fn, hidden, mask), ("hidden", "attention_mask"))
    compare("mean_pool", actual, c["pooled"], {
        "mean_pool_padding": hidden.mean(dim=1),
        "mean_pool_sum": (hidden * mask[..., None]).sum(dim=1),
    })


def _reference_classifier(config: dict, state: dict, dropout: float = 0.3) -> SentimentClassifier:
    model = SentimentClassifier(BertModel(BertConfig(**config)), dropout=dropout)
    model.load_state_dict(state)
    return model.eval()


def check_sentiment_classifier(cls, seed: int | None = None, **shape) -> None:
    """cls(encoder, dropout) with .encoder/.dropout/.classifier; forward(input_ids, attention_mask) -> (B, 5) logits."""
    c = case("sentiment_classifier", sentiment_classifier_case, seed, **shape)
    ref = _reference_classifier(c["config"], c["state"])
    ids, mask = c["input_ids"], c["attention_mask"]
    init = ([{"encoder": c["config"]}], {"dropout": 0.3})
    (actual,) = outputs_of(cls, drive(module_outputs, cls, *init, c["state"], [("forward", [ids, mask], {})]),
                           c["state"])
    (trained,) = outputs_of(cls, drive(module_outputs, cls, *init, c["state"], [("forward", [ids, mask], {})],
                                       train=True, seed=4, eval_modules=("encoder",)), c["state"])
    with torch.no_grad():
        hidden = ref.encoder(ids, mask).last_hidden_state  # (B, T, H)
        unmasked = ref.encoder(ids).last_hidden_state
        mistakes = {"classifier_softmax": c["logits"].softmax(dim=-1),
                    "classifier_cls_token": ref.classifier(hidden[:, 0]),
                    "classifier_no_mask": ref.classifier(mean_pool(unmasked, mask)),
                    "mean_pool_padding": ref.classifier(hidden.mean(dim=1))}
        compare("SentimentClassifier logits (eval mode)", actual, c["logits"], mistakes)
        ref.train()
        ref.encoder.eval()  # only the head's dropout is on
        torch.manual_seed(4)
        expected = ref(ids, mask)
    compare_train_mode("SentimentClassifier logits in training mode (the encoder in eval mode)", trained,
                       expected, {"classifier_no_dropout": c["logits"]}, "classifier_dropout_wrong_place")


def _named(names: list[str], module: str) -> list[str]:
    return [n for n in names if n == module or n.startswith(module + ".")]


def _replay_model(c: dict, weights: dict) -> SentimentClassifier:
    """The reference classifier (no dropout) holding the given weights."""
    config = {**c["config"], "hidden_dropout": 0.0, "attention_dropout": 0.0}
    model = SentimentClassifier(BertModel(BertConfig(**config)), dropout=0.0)
    model.load_state_dict(weights, strict=False)
    return model.train()


def _adamw_steps(c: dict, start: dict, lr: float, steps: int, accumulate: bool = False) -> dict:
    """The weights after `steps` of torch's AdamW on the batch's cross-entropy, from `start`."""
    model = _replay_model(c, start)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        if not accumulate:
            optimizer.zero_grad()
        F.cross_entropy(model(c["input_ids"], c["attention_mask"]), c["labels"]).backward()
        optimizer.step()
    return _weights(model)


# The key projections' biases get no gradient in exact arithmetic (softmax ignores a constant
# added to a whole row of scores), so Adam turns their float rounding noise, which differs with
# the thread count, into full steps of about lr: they are left out of the step-by-step replay.
NOISE_ONLY = ".attention.key.bias"


def _first_difference(actual: dict, expected: dict, atol: float) -> str | None:
    for name, value in expected.items():
        if name.endswith(NOISE_ONLY):
            continue
        got = actual.get(name)
        if got is None or got.shape != value.shape or not torch.allclose(got, value, atol=atol, rtol=1e-4):
            return name
    return None


# One AdamW step moves each weight by at most about lr (3e-3 here); the student's and the
# reference's float32 gradients agree to ~1e-6 relative, so the replayed weights agree to well
# under 1e-6, the tolerance used, while a missing zero_grad or step moves weights by ~lr.
WEIGHT_ATOL = 1e-6
# A cross-entropy of 8 examples over 5 classes, in float32 after a 2-layer encoder: the student's
# and the reference's computations agree to ~1e-6 relative, so the returned loss is compared at
# 1e-4 relative (1e-5 absolute); the softmax-before-the-loss mistake moves it by more than 0.1.
LOSS_RTOL, LOSS_ATOL = 1e-4, 1e-5


def check_train_step(train_step, cls, seed: int | None = None, steps: int = 40, lr: float = 3e-3) -> None:
    """train_step(model, optimizer, input_ids, attention_mask, labels) -> the batch's loss before the update.

    `cls` is the student's classifier class, named by the notebook's call; the step runs on the
    kit's classifier of the same names (see `_tiny_classifier`).
    Runs the student's step on one batch of a tiny classifier (in the student's process) and
    verifies what it did from the weights it left: the first two steps must be exactly torch's
    AdamW steps on this batch's cross-entropy (replayed here on the reference classifier), the
    returned loss the cross-entropy before the update, and after `steps` steps the batch learned
    by heart (the loss recomputed here from the final weights).
    """
    c = case("overfit", overfit_case, seed)
    run = drive(train_step_run, train_step, c["config"], c["state"], 0 if seed is None else seed,
                c["input_ids"], c["attention_mask"], c["labels"], steps, lr)
    start = run["start"]
    if set(start) != set(_weights(_replay_model(c, {}))):
        raise CheckError("train_step: the classifier's parameters were renamed, added or removed")
    model = _replay_model(c, start)
    with torch.no_grad():
        logits = model(c["input_ids"], c["attention_mask"])
    expected_loss = F.cross_entropy(logits, c["labels"]).item()
    loss = run["losses"][0]
    if not isinstance(loss, float):
        raise CheckError(f"train_step must return the loss as a number (loss.item()), got {type_name(loss)}")
    if not math.isclose(loss, expected_loss, rel_tol=LOSS_RTOL, abs_tol=LOSS_ATOL):
        probabilities_loss = F.cross_entropy(logits.softmax(dim=-1), c["labels"]).item()
        if math.isclose(loss, probabilities_loss, rel_tol=LOSS_RTOL, abs_tol=LOSS_ATOL):
            raise CheckError(f"train_step: {MISTAKES['train_step_softmax_loss']}")
        raise CheckError(f"train_step returned {loss:.5f}, but the batch's cross-entropy before the update is "
                         f"{expected_loss:.5f}: return F.cross_entropy(logits, labels).item()")
    after = run["after"]
    if _first_difference(after[0], start, atol=0.0) is None:
        no_grad = all(g is None or not g.any() for g in run["grads"][0].values())
        raise CheckError(f"train_step: {MISTAKES['train_step_no_backward' if no_grad else 'train_step_no_step']}")
    wrong = _first_difference(after[0], _adamw_steps(c, start, lr, 1), WEIGHT_ATOL)
    if wrong is not None:
        raise CheckError(f"train_step: after the first step, parameter {wrong!r} is not where one optimizer step "
                         "on this batch's cross-entropy puts it: zero_grad, the loss of the logits, backward, "
                         "then optimizer.step(), once per call")
    if len(after) > 1:
        wrong = _first_difference(after[1], _adamw_steps(c, start, lr, 2), WEIGHT_ATOL)
        if wrong is not None:
            if _first_difference(after[1], _adamw_steps(c, start, lr, 2, accumulate=True), WEIGHT_ATOL) is None:
                raise CheckError(f"train_step: {MISTAKES['train_step_no_zero_grad']}")
            raise CheckError(f"train_step: after the second step, parameter {wrong!r} is not where two optimizer "
                             "steps on this batch put it")
    if not all(isinstance(value, float) for value in run["losses"]):
        raise CheckError("train_step must return the loss as a number (loss.item()) on every call")
    with torch.no_grad():
        final = F.cross_entropy(_replay_model(c, run["end"])(c["input_ids"], c["attention_mask"]),
                                c["labels"]).item()
    if not final < min(0.1, expected_loss / 5):
        raise CheckError(f"after {steps} steps on one batch the loss only went from {expected_loss:.3f} to "
                         f"{final:.3f}; a working train_step learns a single batch by heart (loss near 0)")


def check_freeze_encoder(freeze_fn, cls, seed: int | None = None) -> None:
    """freeze_fn(model) freezes the encoder of a classifier: after it, one training step moves only the head.

    `cls` is the student's classifier class, named by the notebook's call; the freezing runs on the
    kit's classifier of the same names (see `_tiny_classifier`)."""
    c = case("overfit", overfit_case, seed)
    run = drive(freeze_run, freeze_fn, c["config"], c["state"], 0 if seed is None else seed,
                c["input_ids"], c["attention_mask"], c["labels"])
    names = sorted(run["start"])
    encoder = _named(names, "encoder")
    head_trainable = [n for n in run["trainable"] if n not in encoder]
    if not head_trainable:
        raise CheckError(f"freeze: {MISTAKES['freeze_head_too']}")
    still_trainable = [n for n in encoder if n in run["trainable"]]
    moved = [n for n in encoder if not torch.equal(run["start"][n], run["end"][n])]
    if still_trainable or moved:
        example = (still_trainable or moved)[0]
        if still_trainable and _named(run["eval_modules"], "encoder"):  # eval() was used to "freeze"
            raise CheckError(f"freeze: encoder parameter {example!r}: {MISTAKES['frozen_still_training']}")
        raise CheckError(f"freeze: encoder parameter {example!r} still has requires_grad = True and moved in one "
                         f"training step ({len(still_trainable)} of {len(encoder)} encoder parameters are "
                         "trainable): set requires_grad = False on every parameter of model.encoder")
    if not any(not torch.equal(run["start"][n], run["end"][n]) for n in head_trainable):
        raise CheckError("freeze: the head did not move in one training step: keep its parameters trainable")


def check_above_majority(predicted, gold, what: str = "SST dev accuracy", margin: float = 0.02) -> float:
    """The accuracy of `predicted` must beat always answering the most frequent gold class by `margin`."""
    predicted = torch.as_tensor(predicted).flatten()
    gold = torch.as_tensor(gold).flatten()
    if predicted.shape != gold.shape:
        raise CheckError(f"{what}: {predicted.numel()} predictions for {gold.numel()} gold labels")
    accuracy = (predicted == gold).double().mean().item()
    floor = torch.bincount(gold).max().item() / gold.numel()  # always answering the majority class
    if predicted.unique().numel() == 1:
        raise CheckError(f"{what} {accuracy:.3f}: {MISTAKES['single_class_predictions']}")
    if accuracy < floor + margin:
        raise CheckError(f"{what} is {accuracy:.3f}, not above the majority-class floor {floor:.3f} "
                         f"(+ {margin}): did the training cell run, and does the model train?")
    return accuracy
