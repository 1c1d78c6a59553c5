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
import torch.nn.functional as F
from torch import nn

from minbert_lib.attention import (MultiHeadSelfAttention, merge_heads, padding_mask_to_additive,
                                   scaled_dot_product_attention, split_heads)
from minbert_lib.config import preset
from minbert_lib.model import BertEmbeddings, BertLayer, BertModel, FeedForward, mean_pool
from minbert_lib.losses import TASK_LOSSES, dataset_share_weights, multiple_negatives_ranking_loss
from minbert_lib.multitask import NUM_SENTIMENT_CLASSES, HeadConfig, MultitaskBert, freeze_all_but_last
from minbert_lib.schedules import SCHEDULES, TaskStream
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


# --- 04_sentiment --------------------------------------------------------------------------

class SentimentClassifier(nn.Module):
    """The reference of notebook 04: mean-pooled BERT, dropout, a linear layer to 5 logits."""

    def __init__(self, encoder: BertModel, dropout: float = 0.3):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, NUM_SENTIMENT_CLASSES)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids, attention_mask).last_hidden_state  # (B, T, H)
        return self.classifier(self.dropout(mean_pool(hidden, attention_mask)))  # (B, 5) logits


def tiny_encoder(seed: int, vocab_size: int = 64) -> BertModel:
    """A randomized 2-layer encoder of hidden size 32: fast enough to train in a check."""
    g = torch.Generator().manual_seed(seed)
    config = preset("tiny", vocab_size=vocab_size, max_position_embeddings=16)
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
    case = {"config": reference.encoder.config.to_dict(), "state": reference.state_dict(),
            **random_token_batch(g, batch, length, reference.encoder.config.vocab_size)}
    with torch.no_grad():
        case["logits"] = reference(case["input_ids"], case["attention_mask"])  # (B, 5)
    return case


def overfit_case(seed: int, batch: int = 8, length: int = 6) -> dict:
    """One batch of random sentences with labels: a working train_step learns it by heart."""
    g = torch.Generator().manual_seed(seed)
    encoder = tiny_encoder(seed)
    return {"config": encoder.config.to_dict(), "state": encoder.state_dict(),
            **random_token_batch(g, batch, length, encoder.config.vocab_size),
            "labels": torch.randint(0, NUM_SENTIMENT_CLASSES, (batch,), generator=g)}


# --- 05_multitask --------------------------------------------------------------------------

class MultitaskHeads(nn.Module):
    """The reference of notebook 05: the report's three linear heads on sentence embeddings u, v (B, H)."""

    def __init__(self, hidden_size: int, dropout: float = 0.3):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.sentiment = nn.Linear(hidden_size, NUM_SENTIMENT_CLASSES)
        self.paraphrase = nn.Linear(2 * hidden_size, 1)
        self.similarity = nn.Linear(2 * hidden_size, 1)

    def sentiment_logits(self, u: torch.Tensor) -> torch.Tensor:
        return self.sentiment(self.dropout(u))  # (B, 5)

    def paraphrase_logits(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.paraphrase(self.dropout(torch.cat([u, v], dim=-1))).squeeze(-1)  # (B,)

    def similarity_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.similarity(self.dropout(torch.cat([u, v], dim=-1))).squeeze(-1)  # (B,)


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
            "losses": {task: TASK_LOSSES[task](outputs[task], labels[task]) for task in outputs}}


def seeded_plan(size: int, batch_size: int, seed: int):
    """plan_for_pass(p): the batches of pass p over `size` examples, shuffled by a seed of its own."""
    def plan_for_pass(pass_index: int) -> list[list[int]]:
        order = torch.randperm(size, generator=torch.Generator().manual_seed(1000 * seed + pass_index)).tolist()
        return [order[i:i + batch_size] for i in range(0, size, batch_size)]
    return plan_for_pass


SCHEDULE_SIZES = {"sst": 14, "quora": 23, "sts": 8}


def make_streams(case: dict, tasks=None) -> dict[str, TaskStream]:
    """Fresh task streams of a schedule case, at the start of their first pass."""
    return {task: TaskStream(seeded_plan(size, case["batch_size"], case["seed"] + index))
            for index, (task, size) in enumerate(case["sizes"].items()) if tasks is None or task in tasks}


def run_schedule(epoch_fn, streams: dict, epochs: int) -> list[list[dict]]:
    """Every epoch's steps ({task: batch of indices}) of a schedule function, as plain lists."""
    return [[{task: list(batch) for task, batch in step.items()} for step in epoch_fn(streams)]
            for _ in range(epochs)]


def schedule_case(seed: int, sizes: dict | None = None, batch_size: int = 3, epochs: int = 3) -> dict:
    """Task sizes, batch size and the exact steps of BL, TM1 and TM2 over `epochs` epochs."""
    case = {"seed": seed, "sizes": dict(sizes or SCHEDULE_SIZES), "batch_size": batch_size, "epochs": epochs}
    case["expected"] = {
        name: run_schedule(SCHEDULES[name], make_streams(case, ("sst",) if name == "BL" else None), epochs)
        for name in ("BL", "TM1", "TM2")}
    return case


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


# --- 06_extensions -------------------------------------------------------------------------

def sentence_pairs(generator: torch.Generator, batch: int, hidden_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings u, v (B, H) of pairs, from unrelated to near-identical, so cosines spread over [-1, 1]."""
    u = torch.randn(batch, hidden_size, generator=generator)
    closeness = torch.linspace(-1.0, 1.0, batch)[:, None]  # (B, 1)
    v = closeness * u + 0.6 * torch.randn(batch, hidden_size, generator=generator)
    return u, v


def cosine_heads_case(seed: int, batch: int = 6, hidden_size: int = 8) -> dict:
    g = torch.Generator().manual_seed(seed)
    u, v = sentence_pairs(g, batch, hidden_size)
    cos = F.cosine_similarity(u, v, dim=-1)  # (B,)
    return {"u": u, "v": v, "cos_s": 5.0 * F.relu(cos), "cos_p": torch.sigmoid(cos)}


def tiny_multitask_model(num_layers: int = 6) -> MultitaskBert:
    """A tiny MultitaskBert with as many layers as MiniLM, so that FL2 and FL4 mean the same."""
    torch.manual_seed(0)
    return MultitaskBert(BertModel(preset("tiny", vocab_size=64, num_layers=num_layers,
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
    "04_sentiment": {
        "mean_pool": partial(mean_pool_case, 0),
        "sentiment_classifier": partial(sentiment_classifier_case, 0),
        "overfit": partial(overfit_case, 0),
    },
    "05_multitask": {
        "multitask_heads": partial(multitask_heads_case, 0),
        "task_losses": partial(task_losses_case, 0),
        "schedules": partial(schedule_case, 0),
        "metrics": partial(metrics_case, 0),
    },
    "06_extensions": {
        "cosine_heads": partial(cosine_heads_case, 0),
        "freezing_fl2": partial(freezing_case, 2),
        "freezing_fl4": partial(freezing_case, 4),
        "mnr": partial(mnr_case, 0),
        "reweighting": partial(reweighting_case, 0),
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
