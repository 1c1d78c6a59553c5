"""Grading of 06_extensions: COS-S, COS-P, FLk freezing, the MNR loss, RW loss weights."""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from minbert_lib.config import model_config
from minbert_lib.grading import drive
from minbert_lib.grading import sentiment as _sentiment  # noqa: F401  (registers frozen_still_training)
from minbert_lib.grading.common import (MISTAKES, CheckError, call_function, case, compare, load, register,
                                        result_of, type_name)
from minbert_lib.losses import dataset_share_weights, multiple_negatives_ranking_loss
from minbert_lib.model import BertModel
from minbert_lib.multitask import MultitaskBert, cos_paraphrase_probability, cos_similarity_score, freeze_all_but_last

ASSIGNMENT = "06_extensions"

register({
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
})


# --- cases --------------------------------------------------------------------------------

def sentence_pairs(generator: torch.Generator, batch: int, hidden_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings u, v (B, H) of pairs, from unrelated to near-identical, so cosines spread over [-1, 1]."""
    u = torch.randn(batch, hidden_size, generator=generator)
    closeness = torch.linspace(-1.0, 1.0, batch)[:, None]  # (B, 1)
    v = closeness * u + 0.6 * torch.randn(batch, hidden_size, generator=generator)
    return u, v


def cosine_heads_case(seed: int, batch: int = 6, hidden_size: int = 8) -> dict:
    g = torch.Generator().manual_seed(seed)
    u, v = sentence_pairs(g, batch, hidden_size)
    return {"u": u, "v": v, "cos_s": cos_similarity_score(u, v), "cos_p": cos_paraphrase_probability(u, v)}


def tiny_multitask_model(num_layers: int = 6) -> MultitaskBert:
    """A tiny MultitaskBert with as many layers as MiniLM, so that FL2 and FL4 mean the same."""
    torch.manual_seed(0)
    return MultitaskBert(BertModel(model_config("tiny", vocab_size=64, num_layers=num_layers,
                                          max_position_embeddings=16)))


def freezing_case(k: int, num_layers: int = 6) -> dict:
    """The names of the parameters that FLk leaves trainable in a tiny MultitaskBert."""
    model = tiny_multitask_model(num_layers)
    freeze_all_but_last(model, k)
    return {"k": k, "num_layers": num_layers,
            "trainable": sorted(name for name, p in model.named_parameters() if p.requires_grad)}


def mnr_case(seed: int, batch: int = 6, hidden_size: int = 8, scale: float = 20.0) -> dict:
    g = torch.Generator().manual_seed(seed)
    anchors = torch.randn(batch, hidden_size, generator=g)
    positives = anchors + 0.8 * torch.randn(batch, hidden_size, generator=g)  # each close to its anchor
    return {"anchors": anchors, "positives": positives, "scale": scale,
            "loss": multiple_negatives_ranking_loss(anchors, positives, scale)}


def reweighting_case(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    sizes = {task: int(n) for task, n in zip(("sst", "quora", "sts"), torch.randint(100, 100_000, (3,), generator=g))}
    return {"sizes": sizes, "weights": dataset_share_weights(sizes)}


CASES = {
    "cosine_heads": partial(cosine_heads_case, 0),
    "freezing_fl2": partial(freezing_case, 2),
    "freezing_fl4": partial(freezing_case, 4),
    "mnr": partial(mnr_case, 0),
    "reweighting": partial(reweighting_case, 0),
}


# --- drivers --------------------------------------------------------------------------------

def freezing_run(fn, k: int, num_layers: int) -> dict:
    """Driver: fn(model, k) on a tiny MultitaskBert; the names of its parameters, of the trainable
    ones, and of the submodules left in eval mode."""
    model = tiny_multitask_model(num_layers)
    model.train()
    fn(model, k)
    return {"names": [n for n, _ in model.named_parameters()],
            "trainable": sorted(n for n, p in model.named_parameters() if p.requires_grad),
            "eval_modules": sorted(n for n, m in model.named_modules() if not m.training)}


# --- checks ---------------------------------------------------------------------------------

def _cosine_mistakes(u: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
    cos, dot = F.cosine_similarity(u, v, dim=-1), (u * v).sum(dim=-1)
    return {"cos_s_no_relu": 5.0 * cos, "cos_s_no_scale": F.relu(cos), "cos_dot_product": 5.0 * F.relu(dot),
            "cos_p_no_sigmoid": cos}


def check_cos_similarity(fn, seed: int | None = None, **shape) -> None:
    """COS-S: fn(u (B, H), v (B, H)) -> (B,) = 5 * relu(cos(u, v))."""
    c = case("cosine_heads", cosine_heads_case, seed, **shape)
    mistakes = _cosine_mistakes(c["u"], c["v"])
    mistakes.pop("cos_p_no_sigmoid")
    compare("COS-S", result_of("COS-S", drive(call_function, fn, c["u"], c["v"]), ("u", "v")), c["cos_s"], mistakes)


def check_cos_paraphrase(fn, seed: int | None = None, **shape) -> None:
    """COS-P: fn(u (B, H), v (B, H)) -> (B,) P(paraphrase) = sigmoid(cos(u, v))."""
    c = case("cosine_heads", cosine_heads_case, seed, **shape)
    u, v = c["u"], c["v"]
    compare("COS-P", result_of("COS-P", drive(call_function, fn, u, v), ("u", "v")), c["cos_p"], {
        "cos_p_no_sigmoid": F.cosine_similarity(u, v, dim=-1),
        "cos_dot_product": torch.sigmoid((u * v).sum(dim=-1))})


def check_freeze_all_but_last(fn, k: int = 2) -> None:
    """fn(model, k) freezes a MultitaskBert's embeddings and all but its last k encoder layers (FLk)."""
    c = load(f"freezing_fl{k}") if k in (2, 4) else freezing_case(k)
    run = drive(freezing_run, fn, k, c["num_layers"])
    actual, expected = set(run["trainable"]), set(c["trainable"])
    if actual == expected:
        return
    everything = set(run["names"])
    layers = c["num_layers"]
    first_k = {n for n in everything if not n.startswith("encoder.embeddings.") and not (
        n.startswith("encoder.layers.") and int(n.split(".")[2]) >= k)}
    wrong = {"freeze_first_k": first_k,
             "freeze_embeddings_trainable": expected | {n for n in everything if n.startswith("encoder.embeddings.")},
             "freeze_heads_frozen": {n for n in expected if n.startswith("encoder.layers.")}}
    for mistake, names in wrong.items():
        if actual == names and names != expected:
            raise CheckError(f"FL{k} on a {layers}-layer model: {MISTAKES[mistake]}")
    if actual > expected:
        example = sorted(actual - expected)[0]
        module = example.rsplit(".", 1)[0]
        if any(module == m or module.startswith(m + ".") for m in run["eval_modules"]):  # eval() used to freeze
            raise CheckError(f"FL{k}: {example!r} should be frozen: {MISTAKES['frozen_still_training']}")
        raise CheckError(f"FL{k} on a {layers}-layer model: {example!r} should be frozen (requires_grad = False), "
                         f"and {len(actual - expected)} parameters in all still train")
    raise CheckError(f"FL{k}: {sorted(expected - actual)[0]!r} should still train (requires_grad = True)")


def check_mnr_loss(fn, seed: int | None = None, **shape) -> None:
    """fn(anchors (B, H), positives (B, H), scale) -> the MNR loss: cross-entropy of scale * cos scores, targets i."""
    c = case("mnr", mnr_case, seed, **shape)
    a, p, scale = c["anchors"], c["positives"], c["scale"]
    scores = scale * F.normalize(a, dim=-1) @ F.normalize(p, dim=-1).T  # (B, B)
    B = a.size(0)
    actual = result_of("MNR loss", drive(call_function, fn, a, p, scale), ("anchors", "positives", "scale"))
    compare("MNR loss", actual, c["loss"], {
        "mnr_no_scale": multiple_negatives_ranking_loss(a, p, scale=1.0),
        "mnr_wrong_diagonal": F.cross_entropy(scores, torch.zeros(B, dtype=torch.long)),
        "mnr_wrong_diagonal#reversed": F.cross_entropy(scores, torch.arange(B).flip(0)),
        "mnr_no_normalize": F.cross_entropy(scale * a @ p.T, torch.arange(B)),
    })


def check_loss_weights(fn, seed: int | None = None) -> None:
    """fn({task: dataset size}) -> {task: weight}, each task's share of all training examples (RW)."""
    c = case("reweighting", reweighting_case, seed)
    sizes = c["sizes"]
    actual = result_of("loss weights", drive(call_function, fn, dict(sizes)), ("sizes",))
    if not isinstance(actual, dict) or set(actual) != set(sizes):
        raise CheckError(f"loss weights: return a dict with the tasks {sorted(sizes)} as keys, "
                         f"got {actual!r} ({type_name(actual)})")
    order = sorted(sizes)

    def vector(weights: dict) -> torch.Tensor:
        return torch.tensor([float(weights[t]) for t in order], dtype=torch.float64)

    inverse = {t: 1.0 / n for t, n in sizes.items()}
    total_inverse = sum(inverse.values())
    # shares of three sizes in float64: rounding ~1e-16, so 1e-9 + 1e-6 relative is generous
    compare("loss weights", vector(actual), vector(c["weights"]), {
        "rw_inverse": vector({t: w / total_inverse for t, w in inverse.items()}),
        "rw_not_normalized": vector(sizes)}, atol=1e-9, rtol=1e-6)
