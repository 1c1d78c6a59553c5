"""`MultitaskBert`: one shared BERT encoder and a head per task.

    sentiment (SST-5):   5 logits from one sentence embedding
    paraphrase (Quora):  1 logit  (P(paraphrase) = sigmoid(logit))
    similarity (STS-B):  1 value in [0, 5]
    any other task of tasks.TASKS (head="own"): a linear head of its own, built from its table entry

`model.task_outputs(get_task("sst"), batch)` runs the head of any task on a batch of it.

The pair heads, chosen by `HeadConfig` from `PARAPHRASE_HEADS` and `SIMILARITY_HEADS` (each a small
`PairHead` module; a new head is a class and one line in its table):
    linear  the report's baseline: dropout, then a linear layer on the concatenated
            pair embeddings [u, v] (or on [u, v, |u - v|, u * v] with pair_features="rich")
    cos     COS-S: similarity = 5 * relu(cos(u, v));  COS-P: the logit is cos(u, v),
            so P(paraphrase) = sigmoid(cos(u, v)), which can only range over [0.27, 0.73]
    cross   paraphrase as a cross-encoder: one sequence [CLS] a [SEP] b [SEP], linear on its embedding
    cos-scaled  paraphrase as a bi-encoder with a learned scale and offset on the cosine:
            logit = scale * (cos(u, v) - threshold), starting at scale 20 and threshold 0.8 (where
            MiniLM's untuned cosines best split Quora train), so P(paraphrase) spans all of [0, 1]
    cos-cross   cos-scaled plus a cross-encoder term: logit = scale * (cos(u, v) - threshold)
            + linear(embedding of [CLS] a [SEP] b [SEP]); the linear layer starts at zero, so
            training starts from the cos-scaled head and the cross term learns what cosines miss
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from minbert_lib.model import BertModel, mean_pool
from minbert_lib.tasks import REPORT_TASKS, Task, get_task

Encoding = dict[str, torch.Tensor]  # input_ids, attention_mask, token_type_ids: each (B, T)

NUM_SENTIMENT_CLASSES = 5
MAX_SIMILARITY = 5.0
COS_SCALED_INIT = (20.0, 0.8)  # (scale, threshold) of the cos-scaled paraphrase head at the start


@dataclass
class HeadConfig:
    sentiment_head: str = "linear"   # linear
    paraphrase_head: str = "linear"  # linear | cos (COS-P) | cross | cos-scaled | cos-cross
    similarity_head: str = "linear"  # linear | cos (COS-S)
    pooling: str = "cls"             # cls (the pooler output, as in the report) | mean
    pair_features: str = "concat"    # concat: [u, v] | rich: [u, v, |u - v|, u * v]
    dropout: float = 0.3

    def __post_init__(self):
        allowed = {"sentiment_head": ("linear",), "paraphrase_head": tuple(PARAPHRASE_HEADS),
                   "similarity_head": tuple(SIMILARITY_HEADS), "pooling": ("cls", "mean"),
                   "pair_features": ("concat", "rich")}
        for field, choices in allowed.items():
            if getattr(self, field) not in choices:
                raise ValueError(f"{field}={getattr(self, field)!r}: choose one of {choices}")

    def to_dict(self) -> dict:
        return asdict(self)


class SentimentClassifier(nn.Module):
    """Notebook 04's classifier (and its answer key): mean-pooled BERT, dropout, a linear layer to 5 logits."""

    def __init__(self, encoder: BertModel, dropout: float = 0.3):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, NUM_SENTIMENT_CLASSES)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids, attention_mask).last_hidden_state  # (B, T, H)
        return self.classifier(self.dropout(mean_pool(hidden, attention_mask)))  # (B, 5) logits


class MultitaskHeads(nn.Module):
    """Notebook 05's heads (and their answer key): the report's three linear heads on sentence
    embeddings u, v (B, H). MultitaskBert below holds the trainer's heads, with the extensions."""

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


class PairHead(nn.Module):
    """A paraphrase or similarity head: one value per pair, (B,), from the pair's two sentence
    embeddings u, v (B, H) ("bi-encoder") and/or the embedding (B, H) of the pair read as one
    sequence `[CLS] a [SEP] b [SEP]` ("cross-encoder"). `reads` says which it needs."""
    reads = ("halves",)  # "halves": u and v; "joint": the pair as one sequence

    def __init__(self, hidden_size: int, config: HeadConfig):
        super().__init__()

    def forward(self, u: torch.Tensor | None, v: torch.Tensor | None, joint: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


class LinearPairHead(PairHead):
    """The report's baseline: dropout, then a linear layer on [u, v] (or on [u, v, |u - v|, u * v])."""

    def __init__(self, hidden_size: int, config: HeadConfig):
        super().__init__(hidden_size, config)
        self.rich = config.pair_features == "rich"
        self.dropout = nn.Dropout(config.dropout)
        self.linear = nn.Linear((4 if self.rich else 2) * hidden_size, 1)

    def forward(self, u, v, joint=None):
        features = torch.cat([u, v, (u - v).abs(), u * v] if self.rich else [u, v], dim=-1)  # (B, 2H or 4H)
        return self.linear(self.dropout(features)).squeeze(-1)


def cos_similarity_score(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """COS-S (notebook 06): (B, H), (B, H) -> (B,) similarity 5 * relu(cos(u, v)), on STS's 0..5 scale."""
    return MAX_SIMILARITY * F.relu(F.cosine_similarity(u, v, dim=-1))


def cos_paraphrase_probability(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """COS-P (notebook 06): (B, H), (B, H) -> (B,) P(paraphrase) = sigmoid(cos(u, v)), within [0.27, 0.73]."""
    return torch.sigmoid(F.cosine_similarity(u, v, dim=-1))


class CosineLogitHead(PairHead):
    """COS-P: the logit is cos(u, v), so that sigmoid(logit) is cos_paraphrase_probability(u, v)."""

    def forward(self, u, v, joint=None):
        return F.cosine_similarity(u, v, dim=-1)


class CosineSimilarityHead(PairHead):
    """COS-S: cos_similarity_score(u, v), with no weights of its own."""

    def forward(self, u, v, joint=None):
        return cos_similarity_score(u, v)


class ScaledCosineHead(PairHead):
    """logit = scale * (cos(u, v) - threshold), both learned, starting at COS_SCALED_INIT."""

    def __init__(self, hidden_size: int, config: HeadConfig):
        super().__init__(hidden_size, config)
        self.scale = nn.Parameter(torch.tensor(COS_SCALED_INIT[0]))
        self.threshold = nn.Parameter(torch.tensor(COS_SCALED_INIT[1]))

    def forward(self, u, v, joint=None):
        return self.scale * (F.cosine_similarity(u, v, dim=-1) - self.threshold)


class CrossHead(PairHead):
    """A cross-encoder: dropout, then a linear layer on the embedding of `[CLS] a [SEP] b [SEP]`."""
    reads = ("joint",)

    def __init__(self, hidden_size: int, config: HeadConfig):
        super().__init__(hidden_size, config)
        self.dropout = nn.Dropout(config.dropout)
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, u, v, joint):
        return self.linear(self.dropout(joint)).squeeze(-1)


class ScaledCosineCrossHead(ScaledCosineHead):
    """The scaled cosine plus a cross-encoder term whose linear layer starts at zero, so training
    starts from the scaled cosine and the cross term learns what cosines miss."""
    reads = ("halves", "joint")

    def __init__(self, hidden_size: int, config: HeadConfig):
        super().__init__(hidden_size, config)
        self.cross = CrossHead(hidden_size, config)
        nn.init.zeros_(self.cross.linear.weight)
        nn.init.zeros_(self.cross.linear.bias)

    def forward(self, u, v, joint):
        return super().forward(u, v) + self.cross(None, None, joint)


# The head of each name that HeadConfig accepts: a new head is a PairHead and one line here.
PARAPHRASE_HEADS: dict[str, type[PairHead]] = {
    "linear": LinearPairHead, "cos": CosineLogitHead, "cross": CrossHead,
    "cos-scaled": ScaledCosineHead, "cos-cross": ScaledCosineCrossHead,
}
SIMILARITY_HEADS: dict[str, type[PairHead]] = {"linear": LinearPairHead, "cos": CosineSimilarityHead}


def pair_encoding_of(head: type[PairHead]) -> str:
    """How the data must encode a pair for this head (see batching.PAIR_ENCODINGS)."""
    return {("halves",): "bi", ("joint",): "cross"}.get(tuple(head.reads), "both")


class MultitaskBert(nn.Module):
    """One encoder, a head per task. The report's three tasks have the heads `sentiment`, `paraphrase` and
    `similarity` (chosen by HeadConfig); any other task of `tasks` whose table entry says head="own" gets
    a head of its own in `own_heads`: a linear layer on the sentence embedding, or on a pair's [u, v]."""

    def __init__(self, encoder: BertModel, heads: HeadConfig | None = None, tasks: tuple[str, ...] = REPORT_TASKS):
        super().__init__()
        self.encoder = encoder
        self.heads = heads or HeadConfig()
        self.tasks = tuple(tasks)
        H = encoder.config.hidden_size
        self.dropout = nn.Dropout(self.heads.dropout)
        self.sentiment = nn.Linear(H, NUM_SENTIMENT_CLASSES)
        self.paraphrase = PARAPHRASE_HEADS[self.heads.paraphrase_head](H, self.heads)
        self.similarity = SIMILARITY_HEADS[self.heads.similarity_head](H, self.heads)
        self.own_heads = nn.ModuleDict({name: own_head(get_task(name), H, self.heads) for name in self.tasks
                                        if get_task(name).head == "own"})

    def head_of(self, task: Task) -> nn.Module:
        return self.own_heads[task.name] if task.head == "own" else getattr(self, task.head)

    def task_outputs(self, task: Task, batch: dict) -> torch.Tensor:
        """The task's head on a batch of it: (B, n) logits for n classes, else (B,) logits or scores.
        A pair batch holds its two sentences apart ("a", "b"), as one sequence (the batch itself),
        or both (the sequence in "pair"); see batching.py."""
        head = self.head_of(task)
        if not task.pairs:
            return head(self.dropout(self.embed(batch)))
        if "a" in batch:
            return self.pair_output(head, batch["a"], batch["b"], batch.get("pair"))
        return self.pair_output(head, None, None, batch)

    def embed(self, encoding: Encoding) -> torch.Tensor:
        """One embedding per sequence: (B, T) ids -> (B, H)."""
        out = self.encoder(encoding["input_ids"], encoding["attention_mask"], encoding.get("token_type_ids"))
        if self.heads.pooling == "mean":
            return mean_pool(out.last_hidden_state, encoding["attention_mask"])
        return out.pooler_output

    def embed_pair(self, first: Encoding, second: Encoding) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed both sides of a batch of pairs in one encoder call: -> (B, H), (B, H)."""
        B = first["input_ids"].size(0)
        both = {key: _stack_padded(first[key], second[key]) for key in ("input_ids", "attention_mask")}
        both["token_type_ids"] = torch.zeros_like(both["input_ids"])
        embeddings = self.embed(both)  # (2B, H)
        return embeddings[:B], embeddings[B:]

    def pair_output(self, head: PairHead, first: Encoding | None, second: Encoding | None,
                    pair: Encoding | None) -> torch.Tensor:
        """(B,): what `head` says of each pair, embedded the way the head reads it."""
        u, v = self.embed_pair(first, second) if "halves" in head.reads else (None, None)
        joint = self.embed(pair) if "joint" in head.reads else None
        return head(u, v, joint)

    def sentiment_logits(self, sentence: Encoding) -> torch.Tensor:
        return self.sentiment(self.dropout(self.embed(sentence)))  # (B, 5)

    def paraphrase_logits(self, first: Encoding | None = None, second: Encoding | None = None,
                          pair: Encoding | None = None) -> torch.Tensor:
        """(B,) logits. Bi-encoder heads take `first` and `second`; the cross head takes `pair`;
        cos-cross takes all three."""
        return self.pair_output(self.paraphrase, first, second, pair)

    def similarity_scores(self, first: Encoding, second: Encoding) -> torch.Tensor:
        """(B,) predicted similarity on the 0..5 scale."""
        return self.pair_output(self.similarity, first, second, None)


def own_head(task: Task, hidden_size: int, config: HeadConfig) -> nn.Module:
    """The head MultitaskBert builds for a task of head="own": linear on the embedding, or on a pair's [u, v]."""
    if not task.pairs:
        return nn.Linear(hidden_size, task.output_size)  # the model applies its dropout first
    if task.output_size != 1:
        raise ValueError(f"task {task.name!r}: a pair head gives one value per pair, not {task.output_size}")
    return LinearPairHead(hidden_size, config)


def _stack_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Stack (B, Ta) and (B, Tb) into (2B, max(Ta, Tb)), padding the shorter with zeros."""
    T = max(a.size(1), b.size(1))
    return torch.cat([F.pad(a, (0, T - a.size(1))), F.pad(b, (0, T - b.size(1)))], dim=0)


def freeze_all_but_last(model: MultitaskBert, k: int) -> None:
    """FLk: freeze the embeddings and every encoder layer except the last k; heads and pooler train."""
    encoder = model.encoder
    for p in encoder.embeddings.parameters():
        p.requires_grad = False
    num_layers = len(encoder.layers)
    if not 0 <= k <= num_layers:
        raise ValueError(f"cannot keep the last {k} of {num_layers} layers trainable")
    for index, layer in enumerate(encoder.layers):
        for p in layer.parameters():
            p.requires_grad = index >= num_layers - k
