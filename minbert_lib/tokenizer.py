"""WordPiece tokenization through the `tokenizers` library, over a model's own `vocab.txt`.

    tok = Tokenizer.from_pretrained("minilm-l6")
    batch = tok(["hello world", "a longer sentence"])           # single sentences
    batch = tok(["first of a pair"], ["second of a pair"])       # [CLS] a [SEP] b [SEP]
    batch["input_ids"]        # (B, T) int64, padded to the longest in the batch
    batch["token_type_ids"]   # (B, T) 0 for the first segment, 1 for the second
    batch["attention_mask"]   # (B, T) 1 for real tokens, 0 for padding
"""
from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import BertWordPieceTokenizer

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"


class Tokenizer:
    """Uncased BERT WordPiece with truncation and dynamic padding."""

    def __init__(self, vocab_file: str | Path, max_length: int = 512, lowercase: bool = True):
        vocab_file = Path(vocab_file)
        if not vocab_file.is_file():
            raise FileNotFoundError(f"{vocab_file}: no such vocab file (a model folder has one vocab.txt)")
        self.vocab_file = vocab_file
        self.max_length = max_length
        self._wordpiece = BertWordPieceTokenizer(str(vocab_file), lowercase=lowercase)
        for token in (PAD, UNK, CLS, SEP):
            if self._wordpiece.token_to_id(token) is None:
                raise ValueError(f"{vocab_file}: the vocab lacks the special token {token}")
        self.pad_token_id = self._wordpiece.token_to_id(PAD)
        self._wordpiece.enable_padding(pad_id=self.pad_token_id, pad_token=PAD)
        self._wordpiece.enable_truncation(max_length)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "minilm-l6", **kwargs) -> "Tokenizer":
        """Tokenizer of a model by name ("minilm-l6", "bert-base-uncased") or of a model folder."""
        from minbert_lib.weights import resolve_model_dir

        return cls(resolve_model_dir(name_or_path) / "vocab.txt", **kwargs)

    @property
    def vocab_size(self) -> int:
        return self._wordpiece.get_vocab_size()

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece tokens of one text, without special tokens."""
        return self._wordpiece.encode(text, add_special_tokens=False).tokens

    def __call__(self, texts: list[str] | str, pairs: list[str] | None = None,
                 max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Encode a batch; with `pairs`, each item becomes [CLS] text [SEP] pair [SEP]."""
        if isinstance(texts, str):
            texts = [texts]
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} first sentences but {len(pairs)} second sentences")
        if max_length is not None:
            self._wordpiece.enable_truncation(max_length)
        try:
            inputs = texts if pairs is None else list(zip(texts, pairs))
            encodings = self._wordpiece.encode_batch(inputs)
        finally:
            if max_length is not None:
                self._wordpiece.enable_truncation(self.max_length)
        return {
            "input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),
            "token_type_ids": torch.tensor([e.type_ids for e in encodings], dtype=torch.long),
            "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long),
        }

    def decode(self, ids) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self._wordpiece.decode(ids)
