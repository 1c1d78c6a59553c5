"""Grading of 01_attention: the padding mask, attention, heads, multi-head self-attention."""
from __future__ import annotations

import math
from functools import partial

import torch

from minbert_lib.attention import (MultiHeadSelfAttention, merge_heads, padding_mask_to_additive,
                                   scaled_dot_product_attention, split_heads)
from minbert_lib.grading import drive
from minbert_lib.grading.common import (MISTAKES, CheckError, call_function, case, compare, module_outputs,
                                        outputs_of, random_attention_mask, randomize_, register, result_of)

ASSIGNMENT = "01_attention"

register({
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
    "padding_mask_dtype": "the dtype argument was ignored: the mask must have the dtype it is asked for "
                          "(.to(dtype), torch.finfo(dtype).min), the dtype of the scores it is added to",
    "split_heads_no_transpose": "the result has shape (B, T, nh, hs): transpose(1, 2) to put the heads "
                                "before the tokens, (B, nh, T, hs)",
    "split_heads_reshape": "(B, T, H) was reshaped straight into (B, nh, T, hs), which mixes tokens "
                           "across heads: view it as (B, T, nh, hs) first, then transpose(1, 2)",
    "merge_heads_order": "the heads were merged in the wrong order: reshaping (B, nh, T, hs) straight to "
                         "(B, T, H) mixes tokens; transpose(1, 2) to (B, T, nh, hs) first, then "
                         ".contiguous().view(B, T, H)",
    "self_attention_no_output": "the output projection was not applied: return self.output(merged heads)",
})

# Attention results are float32 of O(1) after ~3 T hs operations (T, hs <= 16 here): rounding
# stays below 1e-6, so compare's 1e-5 absolute + 1e-4 relative leaves a 10x margin, and every
# named mistake moves some element by more than 1e-2 on these cases.
NAN_HINT = " (was a huge mask value added after softmax, or -inf multiplied by 0?)"


# --- cases --------------------------------------------------------------------------------

def padding_mask_case(seed: int, batch: int = 3, length: int = 6) -> dict:
    g = torch.Generator().manual_seed(seed)
    attention_mask = random_attention_mask(g, batch, length)
    return {"attention_mask": attention_mask,
            "additive_mask": padding_mask_to_additive(attention_mask, torch.float32)}


def attention_case(seed: int, shape: tuple[int, int, int, int] = (2, 2, 5, 4)) -> dict:
    """Queries, keys and values of shape (B, nh, T, hs), a padding mask, and the reference results."""
    g = torch.Generator().manual_seed(seed)
    B, nh, T, hs = shape
    q, k, v = (2.0 * torch.randn(shape, generator=g) for _ in range(3))
    attention_mask = random_attention_mask(g, B, T)
    additive_mask = padding_mask_to_additive(attention_mask, torch.float32)  # (B, 1, 1, T)
    identity = torch.eye(T).expand(B, nh, T, T)  # attending over the identity returns the weights
    return {
        "query": q, "key": k, "value": v,
        "attention_mask": attention_mask, "additive_mask": additive_mask,
        "weights": scaled_dot_product_attention(q, k, identity),                       # (B, nh, T, T)
        "weights_masked": scaled_dot_product_attention(q, k, identity, additive_mask),
        "output": scaled_dot_product_attention(q, k, v),                               # (B, nh, T, hs)
        "output_masked": scaled_dot_product_attention(q, k, v, additive_mask),
    }


def heads_case(seed: int, batch: int = 2, length: int = 5, num_heads: int = 4, head_size: int = 3) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, num_heads * head_size, generator=g)          # (B, T, H)
    per_head = torch.randn(batch, num_heads, length, head_size, generator=g)    # (B, nh, T, hs)
    return {"num_heads": num_heads, "x": x, "split": split_heads(x, num_heads),
            "per_head": per_head, "merged": merge_heads(per_head)}


def self_attention_case(seed: int, hidden_size: int = 16, num_heads: int = 4,
                        batch: int = 2, length: int = 5) -> dict:
    g = torch.Generator().manual_seed(seed)
    reference = randomize_(MultiHeadSelfAttention(hidden_size, num_heads), g)
    x = torch.randn(batch, length, hidden_size, generator=g)  # (B, T, H)
    attention_mask = random_attention_mask(g, batch, length)
    with torch.no_grad():
        output = reference(x, padding_mask_to_additive(attention_mask, x.dtype))
    return {"hidden_size": hidden_size, "num_heads": num_heads, "state": reference.state_dict(),
            "x": x, "attention_mask": attention_mask, "output": output}


CASES = {
    "padding_mask": partial(padding_mask_case, 0),
    "attention": partial(attention_case, 0),
    "heads": partial(heads_case, 0),
    "self_attention": partial(self_attention_case, 0),
}


# --- checks -------------------------------------------------------------------------------

def check_padding_mask(fn, seed: int | None = None, **shape) -> None:
    """fn(attention_mask (B, T), dtype) -> additive mask (B, 1, 1, T): 0 at real tokens, very negative at padding."""
    mask = case("padding_mask", padding_mask_case, seed, **shape)["attention_mask"]
    B, T = mask.shape
    real = mask.bool()
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        what = f"padding mask ({dtype})"
        actual = result_of(what, drive(call_function, fn, mask, dtype), ("attention_mask", "dtype"))
        if not isinstance(actual, torch.Tensor):
            raise CheckError(f"{what}: expected a torch.Tensor, got {type(actual).__name__}")
        if tuple(actual.shape) == (B, 1, T, 1):
            raise CheckError(f"{what}: {MISTAKES['padding_mask_query_axis']}")
        if tuple(actual.shape) != (B, 1, 1, T):
            raise CheckError(f"{what}: expected shape {(B, 1, 1, T)}, got {tuple(actual.shape)}")
        if actual.dtype != dtype:
            if dtype != torch.float32 and actual.dtype == torch.float32:
                raise CheckError(f"{what}: got {actual.dtype}: {MISTAKES['padding_mask_dtype']}")
            raise CheckError(f"{what}: expected dtype {dtype} (the dtype argument), got {actual.dtype}")
        values = actual[:, 0, 0, :].double()  # (B, T)
        # "Very negative": softmax gives a key with a score 1e3 below the others a weight of
        # e^-1000 = 0; -1e4 itself becomes -9984 in bfloat16, so the bound is -1e3.
        if (values[real] == 0).all() and (values[~real] <= -1e3).all():
            continue
        if (values[~real] == 0).all() and (values[real] <= -1e3).all():
            raise CheckError(f"{what}: {MISTAKES['padding_mask_inverted']}")
        if (~real).any() and (values[~real] >= 1e3).all():
            raise CheckError(f"{what}: {MISTAKES['padding_mask_positive']}")
        row = int((~real).any(dim=1).float().argmax())  # a sentence with padding, when there is one
        raise CheckError(f"{what}: real tokens must get exactly 0 and padding at most -1e3, "
                         f"but got {values[row].tolist()} for the mask {mask[row].tolist()}")


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


ATTENTION_ARGS = ("query", "key", "value", "additive_mask")


def check_attention_weights(fn, seed: int | None = None, **shape) -> None:
    """fn(query, key, additive_mask=None) -> softmax(Q K^T / sqrt(d_k) + mask), (B, nh, T, T)."""
    c = case("attention", attention_case, seed, **shape)
    q, k, mask = c["query"], c["key"], c["additive_mask"]
    identity = torch.eye(q.size(-2)).expand(*q.shape[:-1], q.size(-2))  # attending over it gives the weights
    names = ("query", "key", "additive_mask")
    what = "attention weights without a mask"
    compare(what, result_of(what, drive(call_function, fn, q, k), names), c["weights"],
            attention_mistakes(q, k, identity, None), nan_hint=NAN_HINT)
    what = "attention weights with a padding mask"
    compare(what, result_of(what, drive(call_function, fn, q, k, mask), names), c["weights_masked"],
            attention_mistakes(q, k, identity, mask), nan_hint=NAN_HINT)


def check_attention(fn, seed: int | None = None, **shape) -> None:
    """fn(query, key, value, additive_mask=None) -> softmax(Q K^T / sqrt(d_k) + mask) V, (B, nh, T, hs)."""
    c = case("attention", attention_case, seed, **shape)
    q, k, v, mask = c["query"], c["key"], c["value"], c["additive_mask"]
    what = "attention output without a mask"
    compare(what, result_of(what, drive(call_function, fn, q, k, v), ATTENTION_ARGS), c["output"],
            attention_mistakes(q, k, v, None), nan_hint=NAN_HINT)
    what = "attention output with a padding mask"
    compare(what, result_of(what, drive(call_function, fn, q, k, v, mask), ATTENTION_ARGS), c["output_masked"],
            attention_mistakes(q, k, v, mask), nan_hint=NAN_HINT)


def check_split_heads(fn, seed: int | None = None, **shape) -> None:
    """fn(x (B, T, H), num_heads) -> (B, nh, T, hs)."""
    c = case("heads", heads_case, seed, **shape)
    x, nh = c["x"], c["num_heads"]
    B, T, H = x.shape
    compare("split_heads", result_of("split_heads", drive(call_function, fn, x, nh), ("x", "num_heads")),
            c["split"], {
                "split_heads_no_transpose": x.view(B, T, nh, H // nh),
                "split_heads_reshape": x.reshape(B, nh, T, H // nh),
            }, atol=0.0, rtol=0.0)  # a reshuffle of the same numbers: exact


def check_merge_heads(fn, seed: int | None = None, **shape) -> None:
    """fn(x (B, nh, T, hs)) -> (B, T, H), the inverse of split_heads."""
    c = case("heads", heads_case, seed, **shape)
    per_head = c["per_head"]
    B, nh, T, hs = per_head.shape
    compare("merge_heads", result_of("merge_heads", drive(call_function, fn, per_head), ("x",)), c["merged"],
            {"merge_heads_order": per_head.reshape(B, T, nh * hs)}, atol=0.0, rtol=0.0)


def check_self_attention(cls, seed: int | None = None, **shape) -> None:
    """cls(hidden_size, num_heads) with .query/.key/.value/.output; forward(x, additive_mask=None) -> (B, T, H)."""
    c = case("self_attention", self_attention_case, seed, **shape)
    H, nh, x = c["hidden_size"], c["num_heads"], c["x"]
    reference = MultiHeadSelfAttention(H, nh)
    reference.load_state_dict(c["state"])
    reference.eval()
    mask = padding_mask_to_additive(c["attention_mask"], x.dtype)
    masked, unmasked = outputs_of(cls, drive(module_outputs, cls, [H, nh], {}, c["state"],
                                             [("forward", [x, mask], {}), ("forward", [x], {})]), c["state"])
    with torch.no_grad():
        q, k, v = (split_heads(proj(x), nh) for proj in (reference.query, reference.key, reference.value))
        mistakes = {"self_attention_no_output": merge_heads(scaled_dot_product_attention(q, k, v, mask)),
                    "mask_ignored": reference(x)}
        compare("multi-head self-attention", masked, c["output"], mistakes)
        compare("multi-head self-attention without a mask (additive_mask=None)", unmasked, reference(x),
                {"self_attention_no_output": merge_heads(scaled_dot_product_attention(q, k, v))})
