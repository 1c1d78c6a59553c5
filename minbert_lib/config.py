"""`BertConfig`: the sizes of a BERT model, and the models the kit knows by name."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

ATTENTION_IMPLEMENTATIONS = ("plain", "sdpa")


@dataclass
class BertConfig:
    """Everything that fixes the shape of a BERT encoder.

    The defaults are those of all-MiniLM-L6-v2 (the kit's default model).
    `attention` picks the attention code: "plain" is the matmul-softmax-matmul
    the students write, "sdpa" calls torch's fused scaled_dot_product_attention;
    both give the same outputs.
    """

    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    attention: str = "plain"

    def __post_init__(self):
        if self.hidden_size % self.num_heads != 0:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}: "
                "every head gets hidden_size / num_heads dimensions"
            )
        if self.attention not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(
                f"attention={self.attention!r} is unknown: use one of {ATTENTION_IMPLEMENTATIONS}"
            )

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads

    # --- conversion to and from Hugging Face `config.json` -------------------

    @classmethod
    def from_hf_dict(cls, hf: dict, **overrides) -> "BertConfig":
        """Build a config from the fields of a Hugging Face BERT `config.json`."""
        if hf.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act={hf['hidden_act']!r} is not supported: the kit's BERT uses exact GELU")
        if hf.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        fields = dict(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            num_layers=hf["num_hidden_layers"],
            num_heads=hf["num_attention_heads"],
            intermediate_size=hf["intermediate_size"],
            max_position_embeddings=hf["max_position_embeddings"],
            type_vocab_size=hf["type_vocab_size"],
            hidden_dropout=hf.get("hidden_dropout_prob", 0.1),
            attention_dropout=hf.get("attention_probs_dropout_prob", 0.1),
            layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
            pad_token_id=hf.get("pad_token_id", 0),
        )
        fields.update(overrides)
        return cls(**fields)

    @classmethod
    def from_json_file(cls, path: str | Path, **overrides) -> "BertConfig":
        """Read a `config.json`, either Hugging Face's format or the kit's own."""
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        if "num_hidden_layers" in raw:
            return cls.from_hf_dict(raw, **overrides)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown config fields {unknown}; known fields are {sorted(known)}")
        return cls(**{**raw, **overrides})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


# The models the kit knows by name. Pretrained ones get their sizes from the weights' own
# config.json (see minbert_lib.weights); these entries document them.
MODELS: dict[str, BertConfig] = {
    "minilm-l6": BertConfig(),
    "bert-base-uncased": BertConfig(
        hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072
    ),
    # Random weights, for fast tests: runs forward and backward in milliseconds.
    "tiny": BertConfig(
        vocab_size=512, hidden_size=32, num_layers=2, num_heads=4,
        intermediate_size=64, max_position_embeddings=128,
    ),
}


def model_config(name: str, **overrides) -> BertConfig:
    """The sizes of a model the kit knows by name ("tiny", "minilm-l6" ...), with optional field overrides."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {sorted(MODELS)}")
    return dataclasses.replace(MODELS[name], **overrides)
