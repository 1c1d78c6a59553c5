"""From examples to padded tensors: tokenize once, pad each batch to its own longest, bucket by length.

    dataset = TaskDataset(load_split("quora", "train"), tokenizer, pair_encoding="cross")
    sampler = BucketBatchSampler(dataset.lengths, batch_size=32, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=dataset.collate)
    for batch in loader:
        batch["input_ids"]        # (B, T), T = the longest sequence of *this* batch
        batch["labels"]           # (B,) int64, or float32 for STS; absent for test files
        batch["ids"]              # list of B example ids (for prediction files)

A sentence pair is encoded one of two ways:
- "cross": one sequence `[CLS] a [SEP] b [SEP]`, token_type_ids 0 over `[CLS] a [SEP]`
  and 1 over `b [SEP]`; the batch has input_ids / token_type_ids / attention_mask;
- "bi": each sentence on its own, `[CLS] a [SEP]` and `[CLS] b [SEP]`, padded separately;
  the batch has `batch["a"]` and `batch["b"]`, each a dict for `model(**batch["a"])`
  (what the cosine-similarity heads and the multiple-negatives ranking loss need);
- "both": the two above at once, `batch["a"]`, `batch["b"]` and the cross form in
  `batch["pair"]` (for a head that reads the pair both ways).
"""
from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from minbert_lib.data import Example
from minbert_lib.tokenizer import Tokenizer

PAIR_ENCODINGS = ("cross", "bi", "both")
ENCODE_CHUNK = 1024  # texts per call to the tokenizer: bounds the padded chunk held in memory


def encode_unpadded(tokenizer: Tokenizer, texts: list[str], pairs: list[str] | None = None,
                    max_length: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(input_ids, token_type_ids) of each text (or text pair), with special tokens, without padding."""
    encoded = []
    for start in range(0, len(texts), ENCODE_CHUNK):
        chunk_pairs = None if pairs is None else pairs[start:start + ENCODE_CHUNK]
        batch = tokenizer(texts[start:start + ENCODE_CHUNK], chunk_pairs, max_length=max_length)
        lengths = batch["attention_mask"].sum(dim=1).tolist()  # padding is on the right: cut it off
        ids, types = batch["input_ids"].numpy(), batch["token_type_ids"].numpy()
        encoded.extend((ids[row, :n].astype(np.int32), types[row, :n].astype(np.int8))
                       for row, n in enumerate(lengths))
    return encoded


class TaskDataset(Dataset):
    """Examples of one task, tokenized once when the dataset is built.

    Each item holds one *segment* (a single sentence, or a pair in cross-encoder form)
    or two (a pair in bi-encoder form); `collate` pads every segment of a batch to the
    batch's longest. Labels become int64 tensors (classes) or float32 (STS scores).
    """

    def __init__(self, examples: Sequence[Example], tokenizer: Tokenizer, pair_encoding: str = "cross",
                 max_length: int | None = None):
        if pair_encoding not in PAIR_ENCODINGS:
            raise ValueError(f"pair_encoding={pair_encoding!r}: choose one of {', '.join(PAIR_ENCODINGS)}")
        if not examples:
            raise ValueError("no examples to build a dataset from")
        has_pairs = {e.text_b is not None for e in examples}
        if len(has_pairs) > 1:
            raise ValueError("mixed examples: some have a second sentence (text_b) and some do not")
        self.ids = [e.id for e in examples]
        self.labels = [e.label for e in examples]
        self.pad_token_id = tokenizer.pad_token_id
        self.pair_encoding = pair_encoding if has_pairs == {True} else None
        texts = [e.text for e in examples]
        seconds = [e.text_b for e in examples] if self.pair_encoding else None

        segments = []
        if self.pair_encoding in ("bi", "both"):
            segments += [encode_unpadded(tokenizer, texts, max_length=max_length),
                         encode_unpadded(tokenizer, seconds, max_length=max_length)]
        if self.pair_encoding != "bi":  # a single sentence, or the pair as one sequence
            segments.append(encode_unpadded(tokenizer, texts, seconds, max_length=max_length))
        self.items = list(zip(*segments))  # items[i] = one (input_ids, token_type_ids) per segment
        self.segment_lengths = [tuple(len(ids) for ids, _ in item) for item in self.items]

    @property
    def lengths(self) -> list[int]:
        """Tokens in each example's longest segment: the key for length bucketing.

        (For bi-encoded pairs the longer sentence is a better key than the sum of both:
        on Quora it leaves 83% real tokens in the batches instead of 70%.)"""
        return [max(n) for n in self.segment_lengths]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return {"segments": self.items[index], "label": self.labels[index], "id": self.ids[index]}

    def collate(self, items: list[dict]) -> dict:
        """Stack items into a batch, each segment padded to its longest in the batch."""
        padded = [pad_segment([item["segments"][s] for item in items], self.pad_token_id)
                  for s in range(len(items[0]["segments"]))]
        if self.pair_encoding == "bi":
            batch = {"a": padded[0], "b": padded[1]}
        elif self.pair_encoding == "both":
            batch = {"a": padded[0], "b": padded[1], "pair": padded[2]}
        else:
            batch = dict(padded[0])
        labels = [item["label"] for item in items]
        if labels[0] is not None:
            dtype = torch.float32 if isinstance(labels[0], float) else torch.long
            batch["labels"] = torch.tensor(labels, dtype=dtype)
        batch["ids"] = [item["id"] for item in items]
        return batch


def pad_segment(encoded: list[tuple[np.ndarray, np.ndarray]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """input_ids / token_type_ids / attention_mask of shape (B, T), T = the longest in `encoded`."""
    longest = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), longest), pad_token_id, dtype=torch.long)
    token_type_ids = torch.zeros((len(encoded), longest), dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), longest), dtype=torch.long)
    for row, (ids, types) in enumerate(encoded):
        input_ids[row, :len(ids)] = torch.from_numpy(ids)
        token_type_ids[row, :len(ids)] = torch.from_numpy(types)
        attention_mask[row, :len(ids)] = 1
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}


def batch_to(batch: dict, device: torch.device | str) -> dict:
    """The batch with every tensor (also inside batch["a"] / batch["b"]) moved to `device`."""
    return {key: batch_to(value, device) if isinstance(value, dict)
            else value.to(device) if isinstance(value, torch.Tensor) else value
            for key, value in batch.items()}


class BucketBatchSampler:
    """Batches of examples of similar length, so that little of each batch is padding.

    Each epoch: shuffle all indices, cut them into pools of `batch_size * pool_batches`,
    sort each pool by length, cut the pools into batches, shuffle the batch order. Every
    example appears exactly once per epoch (the last batch may be smaller); the order
    depends only on `seed` and the epoch number. Iterating runs `batches(self.epoch)` and
    then advances `self.epoch`; `set_epoch` picks an epoch, e.g. when resuming training.

    Pools of 100 batches keep 91% of a `cpu` TM1 epoch's tokens real (50: 89%, random
    batches: 44%; benchmarks/bench_epoch.py).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, pool_batches: int = 100):
        if batch_size < 1 or pool_batches < 1:
            raise ValueError(f"batch_size={batch_size} and pool_batches={pool_batches} must both be at least 1")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.pool_batches = pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, epoch: int) -> list[list[int]]:
        """The batches (lists of dataset indices) of one epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        pool_size = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool_size):
            pool = order[start:start + pool_size]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches.extend(pool[i:i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches(self.epoch)
        self.epoch += 1
        return iter(batches)

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)  # ceil: the one short batch counts


def token_counts(dataset: TaskDataset, batch: Sequence[int]) -> tuple[int, int]:
    """(real, padded) tokens of the tensors one batch of `dataset` makes, over all its segments."""
    lengths = np.array([dataset.segment_lengths[i] for i in batch])  # (B, segments)
    return int(lengths.sum()), len(batch) * int(lengths.max(axis=0).sum())


def real_token_fraction(dataset: TaskDataset, batches: Iterable[Sequence[int]]) -> float:
    """Share of real tokens (not padding) in the padded tensors these batches of `dataset` make."""
    counts = [token_counts(dataset, batch) for batch in batches]
    return sum(real for real, _ in counts) / sum(padded for _, padded in counts)


def mnr_batches(examples: list[Example], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of sentence pairs in which no sentence occurs twice (a repeat would be a false
    negative of the multiple-negatives ranking loss)."""
    order = np.random.default_rng(seed).permutation(len(examples)).tolist()
    batches, pending = [], order
    while pending:
        batch, seen, deferred = [], set(), []
        for index in pending:
            texts = {examples[index].text.lower().strip(), examples[index].text_b.lower().strip()}
            if len(batch) < batch_size and not texts & seen:
                batch.append(index)
                seen |= texts
            else:
                deferred.append(index)
        batches.append(batch)
        pending = deferred
    return [b for b in batches if len(b) > 1]  # one pair alone has no in-batch negative
