"""Sanity tensors: inputs and reference outputs that the notebooks' tests compare against.

Every case is made by the reference library from a fixed seed. The visible tests of a
notebook read the cases stored in its folder (`sanity.pt`, one per assignment); hidden
tests call the same case functions with other seeds and shapes.

    python -m minbert_lib.sanity            # regenerate solutions/<assignment>/sanity.pt
    python -m minbert_lib.sanity --check    # exit 1 when a stored file is out of date
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch
from torch import nn

from minbert_lib.attention import (MultiHeadSelfAttention, merge_heads, padding_mask_to_additive,
                                   scaled_dot_product_attention, split_heads)
from minbert_lib.config import preset
from minbert_lib.model import BertEmbeddings, BertLayer, BertModel, FeedForward
from minbert_lib.notebook import assignment_dir
from minbert_lib.optim import AdamW

SANITY_FILE = "sanity.pt"
PRETRAINED_SENTENCES = [
    "The cat sat on the mat.",
    "Attention lets every token look at every other token.",
    "BERT reads the whole sentence at once.",
]


def random_attention_mask(generator: torch.Generator, batch: int, length: int) -> torch.Tensor:
    """(B, T) of 1 = real token, 0 = padding; row 0 is full, the others are padded at the end."""
    lengths = torch.randint(1, length + 1, (batch,), generator=generator)
    lengths[0] = length
    return (torch.arange(length)[None, :] < lengths[:, None]).long()  # (B, T)


def randomize_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Give every parameter a spread-out random value, so that mistakes change the outputs a lot."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() == 1 and name.endswith("weight"):  # LayerNorm gains: around 1
                param.copy_(1.0 + 0.2 * torch.randn(param.shape, generator=generator))
            elif param.dim() == 1:                             # biases
                param.copy_(0.2 * torch.randn(param.shape, generator=generator))
            else:                                              # (out, in) matrices, embedding tables
                param.copy_(torch.randn(param.shape, generator=generator) / param.shape[-1] ** 0.5)
    return module.eval()


# --- 01_attention --------------------------------------------------------------------------

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


# --- 02_bert -------------------------------------------------------------------------------

def _tiny_module_case(module_cls, seed: int, batch: int, length: int) -> tuple[dict, nn.Module, torch.Generator]:
    """A randomized reference module of the tiny config, with the case fields every module case shares."""
    g = torch.Generator().manual_seed(seed)
    config = preset("tiny", vocab_size=64, max_position_embeddings=16)  # small files
    reference = randomize_(module_cls(config), g)
    case = {"config": config.to_dict(), "state": reference.state_dict(),
            "attention_mask": random_attention_mask(g, batch, length)}
    return case, reference, g


def embeddings_case(seed: int, batch: int = 2, length: int = 6) -> dict:
    case, reference, g = _tiny_module_case(BertEmbeddings, seed, batch, length)
    case["input_ids"] = torch.randint(1, reference.word_embeddings.num_embeddings, (batch, length), generator=g)
    case["token_type_ids"] = torch.randint(0, 2, (batch, length), generator=g)
    with torch.no_grad():
        case["output"] = reference(case["input_ids"], case["token_type_ids"])  # (B, T, H)
    return case


def feed_forward_case(seed: int, batch: int = 2, length: int = 5) -> dict:
    case, reference, g = _tiny_module_case(FeedForward, seed, batch, length)
    case["x"] = torch.randn(batch, length, reference.up.in_features, generator=g)
    with torch.no_grad():
        case["output"] = reference(case["x"])  # (B, T, H)
    return case


def bert_layer_case(seed: int, batch: int = 2, length: int = 5) -> dict:
    case, reference, g = _tiny_module_case(BertLayer, seed, batch, length)
    case["x"] = torch.randn(batch, length, reference.attention_norm.normalized_shape[0], generator=g)
    with torch.no_grad():
        case["output"] = reference(case["x"], padding_mask_to_additive(case["attention_mask"], torch.float32))
    return case


def bert_model_case(seed: int, batch: int = 3, length: int = 7) -> dict:
    case, reference, g = _tiny_module_case(BertModel, seed, batch, length)
    ids = torch.randint(1, reference.config.vocab_size, (batch, length), generator=g)
    case["input_ids"] = ids * case["attention_mask"]  # padding positions hold the pad id 0
    case["token_type_ids"] = torch.randint(0, 2, (batch, length), generator=g) * case["attention_mask"]
    with torch.no_grad():
        out = reference(case["input_ids"], case["attention_mask"], case["token_type_ids"])
    case["last_hidden_state"], case["pooler_output"] = out.last_hidden_state, out.pooler_output
    return case


def pretrained_case(sentences: list[str] = PRETRAINED_SENTENCES) -> dict:
    """all-MiniLM-L6-v2's last hidden states on fixed sentences (needs the weights package)."""
    from minbert_lib.tokenizer import Tokenizer

    batch = Tokenizer.from_pretrained("minilm-l6")(sentences)
    with torch.no_grad():
        out = BertModel.from_pretrained("minilm-l6")(**batch)
    return {"sentences": list(sentences), **batch, "last_hidden_state": out.last_hidden_state}


# --- 03_adamw ------------------------------------------------------------------------------

ADAMW_HYPER = {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}


def adamw_run(make_optimizer, case: dict, l2: float = 0.0) -> list[torch.Tensor]:
    """Run an optimizer over a case; return each parameter's trajectory, (steps + 1, *shape).

    With `case["inputs"]` the loss is the mean squared error of a linear model, so each
    gradient depends on where the earlier steps went; without, every gradient is zero and
    only weight decay moves the parameters. `l2` adds l2 * p to every gradient (Adam + L2).
    """
    params = [p.clone().requires_grad_(True) for p in case["params"]]  # weight (in, out), bias (out,)
    optimizer = make_optimizer(params)
    history = [[p.detach().clone()] for p in params]
    for _ in range(case["steps"]):
        optimizer.zero_grad()
        if "inputs" in case:
            weight, bias = params
            loss = ((case["inputs"] @ weight + bias - case["targets"]) ** 2).mean()
            loss.backward()
        else:
            for p in params:
                p.grad = torch.zeros_like(p)
        if l2:
            for p in params:
                p.grad += l2 * p.detach()
        optimizer.step()
        for trajectory, p in zip(history, params):
            trajectory.append(p.detach().clone())
    return [torch.stack(trajectory) for trajectory in history]


def adamw_case(seed: int, steps: int = 25, zero_grad: bool = False, **hyper) -> dict:
    """Parameters, data and hyperparameters in float64, and the reference AdamW's trajectory."""
    g = torch.Generator().manual_seed(seed)
    n, d_in, d_out = 16, 4, 3
    case = {"params": [torch.randn(d_in, d_out, generator=g, dtype=torch.float64),
                       torch.randn(d_out, generator=g, dtype=torch.float64)],
            "hyper": {**ADAMW_HYPER, **hyper}, "steps": steps}
    if not zero_grad:
        case["inputs"] = torch.randn(n, d_in, generator=g, dtype=torch.float64)
        case["targets"] = torch.randn(n, d_out, generator=g, dtype=torch.float64)
    case["expected"] = adamw_run(lambda params: AdamW(params, **case["hyper"]), case)
    return case


def adamw_decay_case(seed: int, steps: int = 5, lr: float = 0.1, weight_decay: float = 0.5, **hyper) -> dict:
    """Zero gradients: only the weight decay moves the parameters."""
    return adamw_case(seed, steps=steps, zero_grad=True, lr=lr, weight_decay=weight_decay, **hyper)


def adamw_first_step_case(seed: int, **hyper) -> dict:
    """A single step: where bias correction matters most."""
    return adamw_case(seed, steps=1, **hyper)


# --- the stored files ----------------------------------------------------------------------

ASSIGNMENT_CASES = {
    "01_attention": {
        "padding_mask": partial(padding_mask_case, 0),
        "attention": partial(attention_case, 0),
        "heads": partial(heads_case, 0),
        "self_attention": partial(self_attention_case, 0),
    },
    "02_bert": {
        "embeddings": partial(embeddings_case, 0),
        "feed_forward": partial(feed_forward_case, 0),
        "bert_layer": partial(bert_layer_case, 0),
        "bert_model": partial(bert_model_case, 0),
        "pretrained": pretrained_case,
    },
    "03_adamw": {
        "adamw_trajectory": partial(adamw_case, 0),
        "adamw_decay_only": partial(adamw_decay_case, 1),
        "adamw_first_step": partial(adamw_first_step_case, 2),
    },
}


def generate(assignment: str) -> dict:
    return {name: make() for name, make in ASSIGNMENT_CASES[assignment].items()}


def load(name: str) -> dict:
    """One case of the running notebook's sanity file."""
    path = assignment_dir() / SANITY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the notebook from its own folder, "
                                f"the one that holds {SANITY_FILE}")
    cases = torch.load(path, weights_only=True)
    if name not in cases:
        raise KeyError(f"{path} has no case {name!r} (it has {sorted(cases)}): "
                       "this check belongs to another assignment")
    return cases[name]


def differences(stored, fresh, where: str = "") -> list[str]:
    """Where two nested cases differ beyond float noise, as readable paths."""
    if isinstance(fresh, dict):
        if not isinstance(stored, dict) or set(stored) != set(fresh):
            return [f"{where or 'case'}: keys differ"]
        return [d for key in fresh for d in differences(stored[key], fresh[key], f"{where}/{key}")]
    if isinstance(fresh, (list, tuple)):
        if not isinstance(stored, (list, tuple)) or len(stored) != len(fresh):
            return [f"{where}: lengths differ"]
        return [d for i, (s, f) in enumerate(zip(stored, fresh)) for d in differences(s, f, f"{where}[{i}]")]
    if isinstance(fresh, torch.Tensor):
        same = (isinstance(stored, torch.Tensor) and stored.shape == fresh.shape
                and stored.dtype == fresh.dtype and torch.allclose(stored, fresh, rtol=1e-5, atol=1e-6))
        return [] if same else [f"{where}: tensors differ"]
    return [] if stored == fresh else [f"{where}: {stored!r} != {fresh!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minbert_lib.sanity", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("solutions"), help="the course source folder")
    parser.add_argument("--check", action="store_true", help="compare with the stored files, write nothing")
    parser.add_argument("assignments", nargs="*", default=sorted(ASSIGNMENT_CASES))
    args = parser.parse_args(argv)
    stale = []
    for assignment in args.assignments:
        path = args.root / assignment / SANITY_FILE
        fresh = generate(assignment)
        if args.check:
            stored = torch.load(path, weights_only=True) if path.is_file() else None
            problems = differences(stored, fresh) if stored is not None else ["missing"]
            if problems:
                stale.append(f"{path}: {problems[0]}")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(fresh, path)
            print(f"wrote {path}")
    for line in stale:
        print(f"out of date: {line} (run `python -m minbert_lib.sanity`)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
