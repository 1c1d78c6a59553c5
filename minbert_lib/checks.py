"""What the notebooks' test cells call: compare a student's code with the reference.

Each `check_*` runs the student's function or class on a case (the notebook's stored
sanity tensors, or with `seed=...` a fresh case made the same way), and raises
`CheckError` with one clear sentence when the result is wrong. Before giving up with
"differs from the reference", it also runs the common mistakes (`MISTAKES`) and, when the
student's result matches one of them, says which mistake that most likely was.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from minbert_lib import sanity
from minbert_lib.attention import (MultiHeadSelfAttention, merge_heads, padding_mask_to_additive,
                                   scaled_dot_product_attention, split_heads)
from minbert_lib.config import BertConfig, preset
from minbert_lib.model import BertEmbeddings, BertLayer, BertModel, FeedForward
from minbert_lib.optim import AdamW
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
    for key, candidate in mistakes.items():
        if close(actual, candidate):
            raise CheckError(f"{what}: {MISTAKES[key]}")
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

