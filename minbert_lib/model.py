"""The BERT encoder, written for teaching.

    embeddings -> N x BertLayer -> last hidden states (B, T, H) -> pooler -> (B, H)

Each BertLayer is post-norm, as in the original BERT:
    x = LayerNorm(x + Dropout(SelfAttention(x)))
    x = LayerNorm(x + Dropout(FeedForward(x)))
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from minbert_lib.attention import MultiHeadSelfAttention, padding_mask_to_additive
from minbert_lib.config import BertConfig


class BertOutput(NamedTuple):
    last_hidden_state: torch.Tensor  # (B, T, H)
    pooler_output: torch.Tensor      # (B, H): tanh(W h_[CLS] + b)


class BertEmbeddings(nn.Module):
    """word + position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                            padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        # input_ids, token_type_ids: (B, T)
        T = input_ids.size(1)
        positions = torch.arange(T, device=input_ids.device)  # (T,)
        x = (self.word_embeddings(input_ids)                  # (B, T, H)
             + self.position_embeddings(positions)[None]      # (1, T, H)
             + self.token_type_embeddings(token_type_ids))    # (B, T, H)
        return self.dropout(self.layer_norm(x))               # (B, T, H)


class FeedForward(nn.Module):
    """Position-wise: H -> intermediate (GELU) -> H."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))  # (B, T, H) -> (B, T, I) -> (B, T, H)


class BertLayer(nn.Module):
    """Self-attention and feed-forward, each followed by add & norm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = MultiHeadSelfAttention(config.hidden_size, config.num_heads,
                                                config.attention_dropout, config.attention)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor | None) -> torch.Tensor:
        # x: (B, T, H)
        x = self.attention_norm(x + self.dropout(self.attention(x, additive_mask)))  # add & norm
        x = self.ffn_norm(x + self.dropout(self.feed_forward(x)))                    # add & norm
        return x  # (B, T, H)


class BertPooler(nn.Module):
    """tanh(W h + b) on the [CLS] token's last hidden state."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # (B, T, H) -> (B, H)


class BertModel(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_layers))
        self.pooler = BertPooler(config)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """BERT's initialisation: N(0, 0.02) weights, zero biases, LayerNorm at identity."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> BertOutput:
        # input_ids: (B, T); attention_mask: (B, T) 1 = real, 0 = pad; token_type_ids: (B, T)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        additive_mask = None
        if attention_mask is not None:
            additive_mask = padding_mask_to_additive(attention_mask, x.dtype)  # (B, 1, 1, T)
        for layer in self.layers:
            x = layer(x, additive_mask)  # (B, T, H)
        return BertOutput(last_hidden_state=x, pooler_output=self.pooler(x))

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "minilm-l6", **config_overrides) -> "BertModel":
        """Load a model by name ("minilm-l6", "bert-base-uncased"), a hub name ("owner/name[@revision]")
        or a Hugging Face-format folder (see minbert_lib.weights).

        `config_overrides` change fields that do not affect the weights' shapes,
        e.g. attention="sdpa" or hidden_dropout=0.3.
        """
        from minbert_lib.weights import load_pretrained

        return load_pretrained(cls, name_or_path, **config_overrides)


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the real tokens' hidden states: (B, T, H), (B, T) -> (B, H).

    This is how sentence-transformers models such as all-MiniLM-L6-v2 embed a sentence.
    """
    mask = attention_mask[..., None].to(last_hidden_state.dtype)  # (B, T, 1)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
