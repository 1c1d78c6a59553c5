"""What the notebooks' test cells call: compare a student's code with the reference.

Each `check_*` runs the student's function or class on a case (the notebook's stored
sanity tensors, or with `seed=...` a fresh case made the same way), and raises
`CheckError` with one clear sentence when the result is wrong. Before giving up with
"differs from the reference", it also runs the common mistakes (`MISTAKES`) and, when the
student's result matches one of them, says which mistake that most likely was.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from minbert_lib import sanity
from minbert_lib.attention import (MultiHeadSelfAttention, merge_heads, padding_mask_to_additive,
                                   scaled_dot_product_attention, split_heads)
from minbert_lib.config import BertConfig, preset
from minbert_lib.model import BertEmbeddings, BertLayer, BertModel, FeedForward, mean_pool
from minbert_lib.optim import AdamW
from minbert_lib.losses import multiple_negatives_ranking_loss
from minbert_lib.multitask import freeze_all_but_last
from minbert_lib.schedules import TaskStream
from minbert_lib.weights import kit_to_hf_name

MISTAKES = {
    # 01_attention
    "attention_no_scale": "the scores were not divided by sqrt(d_k): use Q K^T / sqrt(d_k) with d_k = query.size(-1)",
    "attention_scale_dk": "the scores were divided by d_k instead of sqrt(d_k)",
    "softmax_wrong_axis": "softmax ran over the queries (dim=-2): each query's weights over the keys "
                          "must sum to 1, so take softmax over the last axis (dim=-1)",
    "mask_after_softmax": "the padding was removed after softmax, so the weights no longer sum to 1: "
                          "add the mask to the scores before softmax",
    "mask_wrong_sign": "the mask was subtracted (or has the wrong sign), so padding gets all the weight: "
                       "add the additive mask to the scores",
    "mask_ignored": "the additive mask was not used: padding tokens still get attention weight",
    "padding_mask_inverted": "the mask is inverted: real tokens (1) must get 0 and padding (0) a large "
                             "negative number, i.e. (1 - mask) * min",
    "padding_mask_positive": "padding got a large positive number: it must get a large negative one, "
                             "e.g. torch.finfo(dtype).min, so that softmax gives it no weight",
    "padding_mask_query_axis": "the mask has shape (B, 1, T, 1), which masks queries instead of keys: "
                               "index it as mask[:, None, None, :] to get (B, 1, 1, T)",
    "split_heads_no_transpose": "the result has shape (B, T, nh, hs): transpose(1, 2) to put the heads "
                                "before the tokens, (B, nh, T, hs)",
    "split_heads_reshape": "(B, T, H) was reshaped straight into (B, nh, T, hs), which mixes tokens "
                           "across heads: view it as (B, T, nh, hs) first, then transpose(1, 2)",
    "merge_heads_order": "the heads were merged in the wrong order: reshaping (B, nh, T, hs) straight to "
                         "(B, T, H) mixes tokens; transpose(1, 2) to (B, T, nh, hs) first, then "
                         ".contiguous().view(B, T, H)",
    "self_attention_no_output": "the output projection was not applied: return self.output(merged heads)",
    # 02_bert
    "embeddings_no_position": "the position embeddings are missing: add position_embeddings(arange(T))",
    "embeddings_no_token_type": "the token-type (segment) embeddings are missing",
    "embeddings_no_layer_norm": "the sum of the three embeddings was not passed through layer_norm",
    "feed_forward_relu": "ReLU was used: BERT's feed-forward uses GELU (F.gelu)",
    "feed_forward_tanh_gelu": "the tanh approximation of GELU was used: BERT's weights expect the exact "
                              "GELU, F.gelu(x) without approximate='tanh'",
    "layer_pre_norm": "LayerNorm was applied before the sub-layer (pre-norm, x + f(LN(x))): BERT is "
                      "post-norm, LN(x + f(x)), normalising after the residual is added",
    "layer_no_residual": "the residual connection is missing: add the sub-layer's input back, "
                         "LN(x + f(x)) rather than LN(f(x))",
    "layer_norm_shared": "the same LayerNorm was used after both sub-layers: use attention_norm after "
                         "attention and ffn_norm after the feed-forward",
    "model_no_mask": "the attention mask was not used: turn it into an additive mask and pass it to every layer",
    "pretrained_train_mode": "the model is in training mode, so dropout changes its outputs: return model.eval()",
    # 03_adamw
    "adamw_no_bias_correction": "there is no bias correction: divide m by (1 - beta1^t) and v by "
                                "(1 - beta2^t), with t the step count starting at 1",
    "adamw_l2": "the weight decay was added to the gradient (Adam with L2 regularisation): AdamW decays "
                "the weights directly, p -= lr * weight_decay * p, outside m and v",
    "adamw_decay_without_lr": "the decay ignored the learning rate: decoupled decay is "
                              "p -= lr * weight_decay * p",
    "adamw_no_decay": "no weight decay was applied: shrink every parameter by lr * weight_decay * p each step",
    # 04_sentiment
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
    # 05_multitask
    "heads_softmax": "the sentiment head returns probabilities (softmax): return the 5 raw logits",
    "paraphrase_sigmoid": "the paraphrase head returns a probability (sigmoid): return the raw logit, since "
                          "binary_cross_entropy_with_logits applies the sigmoid itself",
    "heads_swapped": "the similarity score came from the paraphrase layer: each task has its own linear layer, "
                     "self.paraphrase for Quora and self.similarity for STS",
    "heads_no_dropout": "dropout is never applied: in training mode every head's input goes through self.dropout",
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
    # 06_extensions
    "cos_s_no_relu": "negative cosines gave negative similarities: COS-S is 5 * relu(cos(u, v)), clipped at 0",
    "cos_s_no_scale": "the cosine was not scaled to the 0..5 range of STS: multiply by 5",
    "cos_dot_product": "the dot product u . v was used: the cosine divides it by |u| |v| "
                       "(F.cosine_similarity, or normalise both first)",
    "cos_p_no_sigmoid": "the cosine itself was returned: COS-P's probability is sigmoid(cos(u, v))",
    "freeze_first_k": "the first k layers were left trainable: FLk trains the *last* k encoder layers "
                      "(layers[-k:]) and freezes the ones below",
    "freeze_embeddings_trainable": "the embeddings still train: FLk freezes the embeddings too",
    "freeze_heads_frozen": "the heads or the pooler were frozen: FLk freezes only the embeddings and the lower "
                           "encoder layers; everything above them keeps learning",
    "mnr_no_scale": "the cosine scores were not multiplied by the scale (20): without it the softmax over "
                    "cosines in [-1, 1] is nearly flat",
    "mnr_wrong_diagonal": "the targets are wrong: anchor i's true positive is positive i, so the cross-entropy "
                          "targets are torch.arange(B), the diagonal of the score matrix",
    "mnr_no_normalize": "the scores are dot products: MNR uses cosine similarities, so normalise the "
                        "embeddings (F.normalize) before a @ p.T",
    "rw_inverse": "the weights are inversely proportional to the dataset sizes: RW weighs each task by its "
                  "*share* of all examples, size / total",
    "rw_not_normalized": "the weights are the raw sizes: divide each by the total so that they sum to 1",
    "confusion_transposed": "the confusion matrix is transposed: rows are the gold classes, columns the "
                            "predicted ones, matrix[gold, predicted] += 1",
}


class CheckError(AssertionError):
    """A check failed; the message says what is wrong, in one sentence."""


def compare(what: str, actual, expected: torch.Tensor, mistakes: dict[str, torch.Tensor] | None = None,
            atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Raise CheckError unless `actual` matches `expected`; name the mistake it matches, if any."""
    mistakes = mistakes or {}

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return a.shape == b.shape and torch.allclose(a.to(b.dtype), b, rtol=rtol, atol=atol)

    if not isinstance(actual, torch.Tensor):
        raise CheckError(f"{what}: expected a torch.Tensor, got {type(actual).__name__}")
    actual = actual.detach()
    if close(actual, expected):
        return
    for key, candidate in mistakes.items():  # "name#variant" keys: another way to make the same mistake
        if close(actual, candidate):
            raise CheckError(f"{what}: {MISTAKES[key.split('#')[0]]}")
    if actual.shape != expected.shape:
        raise CheckError(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}")
    if not torch.isfinite(actual).all():
        raise CheckError(f"{what}: the result contains NaN or inf (was a huge mask value added after "
                         "softmax, or a number divided by zero?)")
    worst = (actual.to(expected.dtype) - expected).abs().max().item()
    raise CheckError(f"{what}: differs from the reference by up to {worst:.3g} (tolerance {atol:g}); "
                     "check each step against the formula above")


def _case(name: str, make, seed: int | None, **kwargs) -> dict:
    """The stored sanity case, or with a seed a fresh one made the same way."""
    if seed is None and not kwargs:
        return sanity.load(name)
    return make(0 if seed is None else seed, **kwargs)


# --- 01_attention --------------------------------------------------------------------------

def check_padding_mask(fn, seed: int | None = None, **shape) -> None:
    """fn(attention_mask (B, T), dtype) -> additive mask (B, 1, 1, T): 0 at real tokens, very negative at padding."""
    mask = _case("padding_mask", sanity.padding_mask_case, seed, **shape)["attention_mask"]
    B, T = mask.shape
    actual = fn(mask, torch.float32)
    if not isinstance(actual, torch.Tensor):
        raise CheckError(f"padding mask: expected a torch.Tensor, got {type(actual).__name__}")
    if tuple(actual.shape) == (B, 1, T, 1):
        raise CheckError(f"padding mask: {MISTAKES['padding_mask_query_axis']}")
    if tuple(actual.shape) != (B, 1, 1, T):
        raise CheckError(f"padding mask: expected shape {(B, 1, 1, T)}, got {tuple(actual.shape)}")
    if actual.dtype != torch.float32:
        raise CheckError(f"padding mask: expected dtype torch.float32 (the dtype argument), got {actual.dtype}")
    values, real = actual[:, 0, 0, :], mask.bool()  # (B, T)
    if (values[real] == 0).all() and (values[~real] <= -1e4).all():
        return
    if (values[~real] == 0).all() and (values[real] <= -1e4).all():
        raise CheckError(f"padding mask: {MISTAKES['padding_mask_inverted']}")
    if (values[~real] >= 1e4).all():
        raise CheckError(f"padding mask: {MISTAKES['padding_mask_positive']}")
    raise CheckError("padding mask: real tokens must get exactly 0 and padding at most -1e4, "
                     f"but got {values[0].tolist()} for the mask {mask[0].tolist()}")


def attention_mistakes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       additive_mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """What the common attention mistakes return; with v = identity, their attention weights."""
    scores = q @ k.transpose(-2, -1)  # (B, nh, T, T), not yet scaled
    scaled = scores / math.sqrt(q.size(-1))
    mask = 0.0 if additive_mask is None else additive_mask
    results = {
        "attention_no_scale": torch.softmax(scores + mask, dim=-1) @ v,
        "attention_scale_dk": torch.softmax(scores / q.size(-1) + mask, dim=-1) @ v,
        "softmax_wrong_axis": torch.softmax(scaled + mask, dim=-2) @ v,
    }
    if additive_mask is not None:
        keep = (additive_mask == 0).to(q.dtype)  # (B, 1, 1, T): 1 at real keys
        results["mask_after_softmax"] = (torch.softmax(scaled, dim=-1) * keep) @ v
        results["mask_wrong_sign"] = torch.softmax(scaled - additive_mask, dim=-1) @ v
        results["mask_ignored"] = torch.softmax(scaled, dim=-1) @ v
    return results


def check_attention_weights(fn, seed: int | None = None, **shape) -> None:
    """fn(query, key, additive_mask=None) -> softmax(Q K^T / sqrt(d_k) + mask), (B, nh, T, T)."""
    case = _case("attention", sanity.attention_case, seed, **shape)
    q, k, mask = case["query"], case["key"], case["additive_mask"]
    identity = torch.eye(q.size(-2)).expand(*q.shape[:-1], q.size(-2))  # attending over it gives the weights
    compare("attention weights without a mask", fn(q, k), case["weights"],
            attention_mistakes(q, k, identity, None))
    compare("attention weights with a padding mask", fn(q, k, mask), case["weights_masked"],
            attention_mistakes(q, k, identity, mask))


def check_attention(fn, seed: int | None = None, **shape) -> None:
    """fn(query, key, value, additive_mask=None) -> softmax(Q K^T / sqrt(d_k) + mask) V, (B, nh, T, hs)."""
    case = _case("attention", sanity.attention_case, seed, **shape)
    q, k, v, mask = case["query"], case["key"], case["value"], case["additive_mask"]
    compare("attention output without a mask", fn(q, k, v), case["output"], attention_mistakes(q, k, v, None))
    compare("attention output with a padding mask", fn(q, k, v, mask), case["output_masked"],
            attention_mistakes(q, k, v, mask))


def check_split_heads(fn, seed: int | None = None, **shape) -> None:
    """fn(x (B, T, H), num_heads) -> (B, nh, T, hs)."""
    case = _case("heads", sanity.heads_case, seed, **shape)
    x, nh = case["x"], case["num_heads"]
    B, T, H = x.shape
    compare("split_heads", fn(x, nh), case["split"], {
        "split_heads_no_transpose": x.view(B, T, nh, H // nh),
        "split_heads_reshape": x.reshape(B, nh, T, H // nh),
    }, atol=0.0, rtol=0.0)


def check_merge_heads(fn, seed: int | None = None, **shape) -> None:
    """fn(x (B, nh, T, hs)) -> (B, T, H), the inverse of split_heads."""
    case = _case("heads", sanity.heads_case, seed, **shape)
    per_head = case["per_head"]
    B, nh, T, hs = per_head.shape
    compare("merge_heads", fn(per_head), case["merged"],
            {"merge_heads_order": per_head.reshape(B, T, nh * hs)}, atol=0.0, rtol=0.0)


def load_student_module(module: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Load the reference weights into a student's module; say which names differ if they do."""
    theirs, ours = set(module.state_dict()), set(state)
    if theirs != ours:
        raise CheckError(f"{type(module).__name__} has parameters {sorted(theirs - ours)} that the reference "
                         f"lacks and lacks {sorted(ours - theirs)}: keep the __init__ as it was given")
    module.load_state_dict(state)
    return module.eval()


def check_self_attention(cls, seed: int | None = None, **shape) -> None:
    """cls(hidden_size, num_heads) with .query/.key/.value/.output; forward(x, additive_mask) -> (B, T, H)."""
    case = _case("self_attention", sanity.self_attention_case, seed, **shape)
    H, nh, x = case["hidden_size"], case["num_heads"], case["x"]
    student = load_student_module(cls(H, nh), case["state"])
    reference = load_student_module(MultiHeadSelfAttention(H, nh), case["state"])
    mask = padding_mask_to_additive(case["attention_mask"], x.dtype)
    with torch.no_grad():
        q, k, v = (split_heads(proj(x), nh) for proj in (reference.query, reference.key, reference.value))
        mistakes = {"self_attention_no_output": merge_heads(scaled_dot_product_attention(q, k, v, mask)),
                    "mask_ignored": reference(x)}
        actual = student(x, mask)
    compare("multi-head self-attention", actual, case["output"], mistakes)


# --- 02_bert -------------------------------------------------------------------------------

def _tiny_pair(cls, reference_cls, case: dict) -> tuple[nn.Module, nn.Module]:
    """The student's and the reference module of a case's config, holding the case's weights."""
    config = BertConfig(**case["config"])
    return (load_student_module(cls(config), case["state"]),
            load_student_module(reference_cls(config), case["state"]))


@torch.no_grad()
def check_embeddings(cls, seed: int | None = None, **shape) -> None:
    """cls(config); forward(input_ids, token_type_ids) -> (B, T, H)."""
    case = _case("embeddings", sanity.embeddings_case, seed, **shape)
    student, ref = _tiny_pair(cls, BertEmbeddings, case)
    ids, types = case["input_ids"], case["token_type_ids"]
    words, segments = ref.word_embeddings(ids), ref.token_type_embeddings(types)  # (B, T, H)
    positions = ref.position_embeddings(torch.arange(ids.size(1)))[None]          # (1, T, H)
    compare("BertEmbeddings", student(ids, types), case["output"], {
        "embeddings_no_position": ref.layer_norm(words + segments),
        "embeddings_no_token_type": ref.layer_norm(words + positions),
        "embeddings_no_layer_norm": words + positions + segments,
    })


@torch.no_grad()
def check_feed_forward(cls, seed: int | None = None, **shape) -> None:
    """cls(config); forward(x (B, T, H)) -> (B, T, H)."""
    case = _case("feed_forward", sanity.feed_forward_case, seed, **shape)
    student, ref = _tiny_pair(cls, FeedForward, case)
    up = ref.up(case["x"])  # (B, T, I)
    compare("FeedForward", student(case["x"]), case["output"], {
        "feed_forward_relu": ref.down(F.relu(up)),
        "feed_forward_tanh_gelu": ref.down(F.gelu(up, approximate="tanh")),
    })


@torch.no_grad()
def check_bert_layer(cls, seed: int | None = None, **shape) -> None:
    """cls(config); forward(x (B, T, H), additive_mask (B, 1, 1, T)) -> (B, T, H)."""
    case = _case("bert_layer", sanity.bert_layer_case, seed, **shape)
    student, ref = _tiny_pair(cls, BertLayer, case)
    x = case["x"]
    mask = padding_mask_to_additive(case["attention_mask"], x.dtype)
    attend, ffn, norm1, norm2 = ref.attention, ref.feed_forward, ref.attention_norm, ref.ffn_norm
    pre = x + attend(norm1(x), mask)
    no_residual = norm1(attend(x, mask))
    shared = norm1(x + attend(x, mask))
    compare("BertLayer", student(x, mask), case["output"], {
        "layer_pre_norm": pre + ffn(norm2(pre)),
        "layer_no_residual": norm2(ffn(no_residual)),
        "layer_norm_shared": norm1(shared + ffn(shared)),
        "mask_ignored": ref(x, None),
    })


@torch.no_grad()
def check_bert_model(cls, seed: int | None = None, **shape) -> None:
    """cls(config); forward(input_ids, attention_mask, token_type_ids) -> BertOutput."""
    case = _case("bert_model", sanity.bert_model_case, seed, **shape)
    student, ref = _tiny_pair(cls, BertModel, case)
    ids, mask, types = case["input_ids"], case["attention_mask"], case["token_type_ids"]
    out = student(ids, mask, types)
    if not hasattr(out, "last_hidden_state"):
        raise CheckError(f"BertModel: forward must return a BertOutput, got {type(out).__name__}")
    unmasked = ref(ids, None, types)
    compare("BertModel last_hidden_state", out.last_hidden_state, case["last_hidden_state"],
            {"model_no_mask": unmasked.last_hidden_state})
    compare("BertModel pooler_output", out.pooler_output, case["pooler_output"])


@torch.no_grad()
def check_padding_invariance(cls, seed: int = 0) -> None:
    """Changing what stands at padded positions must not change the real tokens' hidden states."""
    case = sanity.bert_model_case(seed)
    model, _ = _tiny_pair(cls, BertModel, case)
    ids, mask, types = case["input_ids"], case["attention_mask"], case["token_type_ids"]
    other_ids = torch.where(mask.bool(), ids, (ids + 7) % model.config.vocab_size)  # other tokens at the pads
    real = mask.bool()  # (B, T)
    changed = model(other_ids, mask, types).last_hidden_state[real]
    if not torch.allclose(changed, model(ids, mask, types).last_hidden_state[real], atol=1e-5):
        raise CheckError(f"changing the padding tokens changed the real tokens' hidden states: "
                         f"{MISTAKES['model_no_mask']}")


@torch.no_grad()
def check_pretrained(load_fn, sentences: list[str] | None = None) -> None:
    """load_fn() -> a model holding all-MiniLM-L6-v2; its hidden states must match the reference's."""
    case = sanity.load("pretrained") if sentences is None else sanity.pretrained_case(sentences)
    model = load_fn()
    if model.training:
        raise CheckError(f"pretrained model: {MISTAKES['pretrained_train_mode']}")
    out = model(case["input_ids"], case["attention_mask"], case["token_type_ids"])
    real = case["attention_mask"].bool()  # compare real tokens only: padding outputs mean nothing
    compare("pretrained last_hidden_state", out.last_hidden_state[real], case["last_hidden_state"][real],
            atol=1e-4, rtol=1e-4)


def check_weight_names(fn) -> None:
    """fn(Hugging Face parameter name) -> the kit's name, for every parameter of a BertModel."""
    for kit_name in BertModel(preset("tiny")).state_dict():
        hf_name = kit_to_hf_name(kit_name)
        got = fn(hf_name)
        if got != kit_name:
            raise CheckError(f"weight names: {hf_name!r} must become {kit_name!r}, got {got!r}")


# --- 03_adamw ------------------------------------------------------------------------------

def _check_adamw(what: str, cls, case: dict) -> None:
    """Run the student's optimizer and the reference's mistaken variants over the same case."""
    hyper = case["hyper"]

    def flat(trajectories: list[torch.Tensor]) -> torch.Tensor:  # (steps + 1, all parameter entries)
        return torch.cat([t.flatten(1) for t in trajectories], dim=1)

    def reference(l2: float = 0.0, **changes) -> torch.Tensor:
        return flat(sanity.adamw_run(lambda params: AdamW(params, **{**hyper, **changes}), case, l2=l2))

    decay, lr = hyper["weight_decay"], hyper["lr"]
    mistakes = {
        "adamw_no_bias_correction": reference(bias_correction=False),
        "adamw_l2": reference(l2=decay, weight_decay=0.0),
        "adamw_decay_without_lr": reference(weight_decay=decay / lr),
        "adamw_no_decay": reference(weight_decay=0.0),
    }
    actual = flat(sanity.adamw_run(lambda params: cls(params, **hyper), case))
    compare(what, actual, flat(case["expected"]), mistakes, atol=1e-10, rtol=1e-8)


def check_adamw_trajectory(cls, seed: int | None = None, **options) -> None:
    """cls(params, lr, betas, eps, weight_decay): many steps on a regression loss, in float64."""
    _check_adamw("AdamW trajectory", cls, _case("adamw_trajectory", sanity.adamw_case, seed, **options))


def check_adamw_decay(cls, seed: int | None = None, **options) -> None:
    """With zero gradients only the decoupled decay moves the weights: p_t = p_0 (1 - lr wd)^t."""
    case = _case("adamw_decay_only", sanity.adamw_decay_case, seed, **options)
    _check_adamw("AdamW with zero gradients", cls, case)


def check_adamw_first_step(cls, seed: int | None = None, **options) -> None:
    """With bias correction the first step moves each weight by about lr."""
    case = _case("adamw_first_step", sanity.adamw_first_step_case, seed, **options)
    _check_adamw("AdamW first step", cls, case)



# --- 04_sentiment --------------------------------------------------------------------------

def check_mean_pool(fn, seed: int | None = None, **shape) -> None:
    """fn(hidden (B, T, H), attention_mask (B, T)) -> (B, H), the mean over each sentence's real tokens."""
    case = _case("mean_pool", sanity.mean_pool_case, seed, **shape)
    hidden, mask = case["hidden"], case["attention_mask"]
    compare("mean_pool", fn(hidden, mask), case["pooled"], {
        "mean_pool_padding": hidden.mean(dim=1),
        "mean_pool_sum": (hidden * mask[..., None]).sum(dim=1),
    })


def _sentiment_pair(cls, case: dict, dropout: float = 0.3) -> tuple[nn.Module, nn.Module]:
    """The student's and the reference classifier on a tiny encoder, holding the case's weights."""
    config = BertConfig(**case["config"])
    student = cls(BertModel(config), dropout=dropout)
    return (load_student_module(student, case["state"]),
            load_student_module(sanity.SentimentClassifier(BertModel(config), dropout=dropout), case["state"]))


def check_sentiment_classifier(cls, seed: int | None = None, **shape) -> None:
    """cls(encoder, dropout) with .encoder/.dropout/.classifier; forward(input_ids, attention_mask) -> (B, 5) logits."""
    case = _case("sentiment_classifier", sanity.sentiment_classifier_case, seed, **shape)
    student, ref = _sentiment_pair(cls, case)
    ids, mask = case["input_ids"], case["attention_mask"]
    with torch.no_grad():
        hidden = ref.encoder(ids, mask).last_hidden_state  # (B, T, H)
        unmasked = ref.encoder(ids).last_hidden_state
        mistakes = {"classifier_softmax": case["logits"].softmax(dim=-1),
                    "classifier_cls_token": ref.classifier(hidden[:, 0]),
                    "classifier_no_mask": ref.classifier(mean_pool(unmasked, mask)),
                    "mean_pool_padding": ref.classifier(hidden.mean(dim=1))}
        compare("SentimentClassifier logits (eval mode)", student(ids, mask), case["logits"], mistakes)
        student.train()
        student.encoder.eval()  # only the head's dropout is on
        torch.manual_seed(0)
        if torch.allclose(student(ids, mask), case["logits"], atol=1e-6):
            raise CheckError(f"SentimentClassifier in training mode: {MISTAKES['classifier_no_dropout']}")


def _tiny_classifier(cls, case: dict, seed: int) -> nn.Module:
    """The student's classifier (without dropout) on the case's tiny encoder, its head seeded."""
    encoder = BertModel(BertConfig(**{**case["config"], "hidden_dropout": 0.0, "attention_dropout": 0.0}))
    encoder.load_state_dict(case["state"])
    torch.manual_seed(seed)
    return cls(encoder, dropout=0.0).train()


def _loss_and_grads(model: nn.Module, case: dict) -> tuple[float, list[torch.Tensor]]:
    """The reference cross-entropy of a model on the case's batch, and its gradients (the model is left alone)."""
    twin = copy.deepcopy(model)
    twin.zero_grad(set_to_none=True)
    loss = F.cross_entropy(twin(case["input_ids"], case["attention_mask"]), case["labels"])
    loss.backward()
    return loss.item(), [torch.zeros_like(p) if p.grad is None else p.grad for p in twin.parameters()]


def check_train_step(train_step, cls, seed: int | None = None, steps: int = 40, lr: float = 3e-3) -> None:
    """train_step(model, optimizer, input_ids, attention_mask, labels) -> the batch's loss before the update.

    Runs the student's step on one batch of a tiny classifier and follows it: the returned loss
    must be the cross-entropy of the logits, the gradients must be this step's only, and after
    `steps` steps the model must have learned the batch by heart (overfit a batch).
    """
    case = _case("overfit", sanity.overfit_case, seed)
    model = _tiny_classifier(cls, case, 0 if seed is None else seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    batch = (case["input_ids"], case["attention_mask"], case["labels"])
    losses = []
    for step in range(steps):
        before = [p.detach().clone() for p in model.parameters()]
        if step < 2:  # the reference loss and gradients, for the checks of the first two steps
            expected, fresh_grads = _loss_and_grads(model, case)
            with torch.no_grad():
                logits = model(case["input_ids"], case["attention_mask"])
            previous_grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
        loss = train_step(model, optimizer, *batch)
        if not isinstance(loss, (float, torch.Tensor)) or isinstance(loss, torch.Tensor) and loss.numel() != 1:
            raise CheckError(f"train_step must return the loss as a number (loss.item()), got {type(loss).__name__}")
        loss = float(loss)
        if step == 0 and not math.isclose(loss, expected, rel_tol=1e-4, abs_tol=1e-5):
            probabilities_loss = F.cross_entropy(logits.softmax(dim=-1), case["labels"]).item()
            if math.isclose(loss, probabilities_loss, rel_tol=1e-4, abs_tol=1e-5):
                raise CheckError(f"train_step: {MISTAKES['train_step_softmax_loss']}")
            raise CheckError(f"train_step returned {loss:.5f}, but the batch's cross-entropy before the update is "
                             f"{expected:.5f}: return F.cross_entropy(logits, labels).item()")
        changed = step > 1 or any(not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters()))
        if not changed:
            no_grad = all(p.grad is None or not p.grad.any() for p in model.parameters())
            raise CheckError(f"train_step: {MISTAKES['train_step_no_backward' if no_grad else 'train_step_no_step']}")
        if step == 1:
            head = model.classifier.weight  # its gradient is nonzero on every step
            index = [p is head for p in model.parameters()].index(True)
            old = previous_grads[index]
            if head.grad is not None and old is not None and not torch.allclose(head.grad, fresh_grads[index], atol=1e-5) \
                    and torch.allclose(head.grad, fresh_grads[index] + old, atol=1e-5):
                raise CheckError(f"train_step: {MISTAKES['train_step_no_zero_grad']}")
        losses.append(loss)
    final, _ = _loss_and_grads(model, case)
    if not final < min(0.1, losses[0] / 5):
        raise CheckError(f"after {steps} steps on one batch the loss only went from {losses[0]:.3f} to {final:.3f}; "
                         "a working train_step learns a single batch by heart (loss near 0)")


def check_freeze_encoder(freeze_fn, cls, seed: int | None = None) -> None:
    """freeze_fn(model) freezes the encoder of a classifier: after it, one training step moves only the head."""
    case = _case("overfit", sanity.overfit_case, seed)
    model = _tiny_classifier(cls, case, 0 if seed is None else seed)
    freeze_fn(model)
    encoder = {id(p) for p in model.encoder.parameters()}
    if not any(p.requires_grad for p in model.parameters() if id(p) not in encoder):
        raise CheckError(f"freeze: {MISTAKES['freeze_head_too']}")
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    F.cross_entropy(model(case["input_ids"], case["attention_mask"]), case["labels"]).backward()
    optimizer.step()
    moved = sorted(name for name, p in model.named_parameters()
                   if id(p) in encoder and not torch.equal(before[name], p.detach()))
    still_trainable = sorted(name for name, p in model.encoder.named_parameters() if p.requires_grad)
    if moved or still_trainable:
        example = (moved or still_trainable)[0]
        raise CheckError(f"freeze: encoder parameter {example!r}: {MISTAKES['frozen_still_training']}")


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


# --- 05_multitask --------------------------------------------------------------------------

def check_multitask_heads(cls, seed: int | None = None, **shape) -> None:
    """cls(hidden_size, dropout) with sentiment_logits(u), paraphrase_logits(u, v), similarity_scores(u, v)."""
    case = _case("multitask_heads", sanity.multitask_heads_case, seed, **shape)
    H, u, v = case["hidden_size"], case["u"], case["v"]
    student = load_student_module(cls(H, dropout=0.3), case["state"])
    ref = load_student_module(sanity.MultitaskHeads(H, dropout=0.3), case["state"])
    with torch.no_grad():
        pair = torch.cat([u, v], dim=-1)  # (B, 2H)
        compare("sentiment_logits", student.sentiment_logits(u), case["sentiment"],
                {"heads_softmax": case["sentiment"].softmax(dim=-1)})
        compare("paraphrase_logits", student.paraphrase_logits(u, v), case["paraphrase"],
                {"paraphrase_sigmoid": case["paraphrase"].sigmoid()})
        compare("similarity_scores", student.similarity_scores(u, v), case["similarity"],
                {"heads_swapped": ref.paraphrase(pair).squeeze(-1)})
        student.train()
        torch.manual_seed(0)
        if torch.allclose(student.similarity_scores(u, v), case["similarity"], atol=1e-6):
            raise CheckError(f"similarity_scores in training mode: {MISTAKES['heads_no_dropout']}")


def check_task_loss(fn, seed: int | None = None, **shape) -> None:
    """fn(task, outputs, labels) -> the task's loss: cross-entropy, BCE with logits, MSE."""
    case = _case("task_losses", sanity.task_losses_case, seed, **shape)
    outputs, labels = case["outputs"], case["labels"]
    mistakes = {"quora": {"bce_sigmoid_twice": F.binary_cross_entropy_with_logits(
                    outputs["quora"].sigmoid(), labels["quora"].float())},
                "sst": {"classifier_softmax": F.cross_entropy(outputs["sst"].softmax(dim=-1), labels["sst"])},
                "sts": {"sts_loss_l1": F.l1_loss(outputs["sts"], labels["sts"])}}
    for task in ("sst", "quora", "sts"):
        actual = fn(task, outputs[task].clone(), labels[task].clone())
        if isinstance(actual, torch.Tensor) and actual.dim() != 0:
            raise CheckError(f"task_loss({task!r}): return one number, the mean over the batch (a 0-d tensor), "
                             f"not shape {tuple(actual.shape)}")
        compare(f"task_loss({task!r})", actual, case["losses"][task], mistakes[task])


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
    case = _case("schedules", sanity.schedule_case, seed, **options)
    tasks = ("sst",) if name == "BL" else None
    streams = sanity.make_streams(case, tasks)
    if not all(isinstance(s, TaskStream) for s in streams.values()):
        raise CheckError("schedule: internal error, the streams are not TaskStreams")
    try:
        actual = sanity.run_schedule(epoch_fn, streams, case["epochs"])
    except TypeError as err:
        raise CheckError(f"{name}: the epoch function must yield dicts {{task: batch}} ({err})") from None
    expected = case["expected"][name]
    if actual == expected:
        return
    if name == "BL" and any(set(step) != {"sst"} for epoch in actual for step in epoch):
        raise CheckError(f"{name}: {MISTAKES['baseline_all_tasks']}")
    for mistake, wrong_fn in _mistaken_schedules()[name].items():
        if actual == sanity.run_schedule(wrong_fn, sanity.make_streams(case, tasks), case["epochs"]):
            raise CheckError(f"{name}: {MISTAKES[mistake]}")
    for epoch, (got, want) in enumerate(zip(actual, expected), start=1):
        if got != want:
            where = next((i for i, (a, b) in enumerate(zip(got, want), start=1) if a != b), min(len(got), len(want)) + 1)
            raise CheckError(f"{name}: epoch {epoch} has {len(got)} steps (the reference {len(want)}), and they "
                             f"first differ at step {where}; sizes {case['sizes']} in batches of {case['batch_size']}")
    raise CheckError(f"{name}: expected {_describe_steps(expected)}, got {_describe_steps(actual)}")


def check_pearson(fn, seed: int | None = None, **shape) -> None:
    """fn(gold (N,), predicted (N,)) -> Pearson's r as a 0-d tensor or float."""
    case = _case("metrics", sanity.metrics_case, seed, **shape)
    x, y = case["gold_scores"], case["predicted_scores"]
    xc, yc = x - x.mean(), y - y.mean()
    actual = fn(x.clone(), y.clone())
    actual = torch.as_tensor(actual, dtype=torch.float64) if not isinstance(actual, torch.Tensor) else actual
    compare("pearson", actual.reshape(()), case["pearson"], {
        "pearson_not_centered": F.cosine_similarity(x, y, dim=0),
        "pearson_covariance": (xc * yc).mean(),
    })


def check_confusion_matrix(fn, seed: int | None = None, **shape) -> None:
    """fn(gold (N,), predicted (N,), num_classes) -> (C, C) counts, row = gold, column = predicted."""
    case = _case("metrics", sanity.metrics_case, seed, **shape)
    actual = fn(case["gold"].clone(), case["predicted"].clone(), case["num_classes"])
    actual = torch.as_tensor(actual)
    compare("confusion_matrix", actual.to(torch.int64), case["confusion"],
            {"confusion_transposed": case["confusion"].T}, atol=0, rtol=0)


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


# --- 06_extensions -------------------------------------------------------------------------

def _cosine_mistakes(u: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
    cos, dot = F.cosine_similarity(u, v, dim=-1), (u * v).sum(dim=-1)
    return {"cos_s_no_relu": 5.0 * cos, "cos_s_no_scale": F.relu(cos), "cos_dot_product": 5.0 * F.relu(dot),
            "cos_p_no_sigmoid": cos}


def check_cos_similarity(fn, seed: int | None = None, **shape) -> None:
    """COS-S: fn(u (B, H), v (B, H)) -> (B,) = 5 * relu(cos(u, v))."""
    case = _case("cosine_heads", sanity.cosine_heads_case, seed, **shape)
    mistakes = _cosine_mistakes(case["u"], case["v"])
    mistakes.pop("cos_p_no_sigmoid")
    compare("COS-S", fn(case["u"].clone(), case["v"].clone()), case["cos_s"], mistakes)


def check_cos_paraphrase(fn, seed: int | None = None, **shape) -> None:
    """COS-P: fn(u (B, H), v (B, H)) -> (B,) P(paraphrase) = sigmoid(cos(u, v))."""
    case = _case("cosine_heads", sanity.cosine_heads_case, seed, **shape)
    u, v = case["u"], case["v"]
    compare("COS-P", fn(u.clone(), v.clone()), case["cos_p"], {
        "cos_p_no_sigmoid": F.cosine_similarity(u, v, dim=-1),
        "cos_dot_product": torch.sigmoid((u * v).sum(dim=-1))})


def _trainable(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def check_freeze_all_but_last(fn, k: int = 2) -> None:
    """fn(model, k) freezes a MultitaskBert's embeddings and all but its last k encoder layers (FLk)."""
    case = sanity.load(f"freezing_fl{k}") if k in (2, 4) else sanity.freezing_case(k)
    model = sanity.tiny_multitask_model(case["num_layers"])
    fn(model, k)
    actual, expected = _trainable(model), set(case["trainable"])
    if actual == expected:
        return
    everything = {name for name, _ in model.named_parameters()}
    layers = len(model.encoder.layers)
    first_k = {n for n in everything if not n.startswith("encoder.embeddings.") and not (
        n.startswith("encoder.layers.") and int(n.split(".")[2]) >= k)}
    wrong = {"frozen_still_training": everything, "freeze_first_k": first_k,
             "freeze_embeddings_trainable": expected | {n for n in everything if n.startswith("encoder.embeddings.")},
             "freeze_heads_frozen": {n for n in expected if n.startswith("encoder.layers.")}}
    for mistake, names in wrong.items():
        if actual == names:
            raise CheckError(f"FL{k} on a {layers}-layer model: {MISTAKES[mistake]}")
    if actual > expected:
        raise CheckError(f"FL{k}: {sorted(actual - expected)[0]!r} should be frozen: "
                         f"{MISTAKES['frozen_still_training']}")
    raise CheckError(f"FL{k}: {sorted(expected - actual)[0]!r} should still train (requires_grad = True)")


def check_mnr_loss(fn, seed: int | None = None, **shape) -> None:
    """fn(anchors (B, H), positives (B, H), scale) -> the MNR loss: cross-entropy of scale * cos scores, targets i."""
    case = _case("mnr", sanity.mnr_case, seed, **shape)
    a, p, scale = case["anchors"], case["positives"], case["scale"]
    scores = scale * F.normalize(a, dim=-1) @ F.normalize(p, dim=-1).T  # (B, B)
    B = a.size(0)
    compare("MNR loss", fn(a.clone(), p.clone(), scale), case["loss"], {
        "mnr_no_scale": multiple_negatives_ranking_loss(a, p, scale=1.0),
        "mnr_wrong_diagonal": F.cross_entropy(scores, torch.zeros(B, dtype=torch.long)),
        "mnr_wrong_diagonal#reversed": F.cross_entropy(scores, torch.arange(B).flip(0)),
        "mnr_no_normalize": F.cross_entropy(scale * a @ p.T, torch.arange(B)),
    })


def check_loss_weights(fn, seed: int | None = None) -> None:
    """fn({task: dataset size}) -> {task: weight}, each task's share of all training examples (RW)."""
    case = _case("reweighting", sanity.reweighting_case, seed)
    sizes = case["sizes"]
    actual = fn(dict(sizes))
    if not isinstance(actual, dict) or set(actual) != set(sizes):
        raise CheckError(f"loss weights: return a dict with the tasks {sorted(sizes)} as keys, got {actual!r}")
    order = sorted(sizes)

    def vector(weights: dict) -> torch.Tensor:
        return torch.tensor([float(weights[t]) for t in order], dtype=torch.float64)

    inverse = {t: 1.0 / n for t, n in sizes.items()}
    total_inverse = sum(inverse.values())
    compare("loss weights", vector(actual), vector(case["weights"]), {
        "rw_inverse": vector({t: w / total_inverse for t, w in inverse.items()}),
        "rw_not_normalized": vector(sizes)}, atol=1e-9, rtol=1e-6)
