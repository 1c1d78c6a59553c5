"""Scaled dot-product attention and multi-head self-attention, written out for teaching.

Shapes: B = batch, T = sequence length, H = hidden size, nh = heads, hs = head size (H / nh).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def padding_mask_to_additive(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Turn a (B, T) mask of 1 = real token, 0 = padding into an additive (B, 1, 1, T) mask.

    Real tokens get 0 and padding gets the most negative number of `dtype`, so
    that after adding it to the attention scores softmax gives padding no weight.
    """
    keep = attention_mask[:, None, None, :].to(dtype)  # (B, 1, 1, T)
    return (1.0 - keep) * torch.finfo(dtype).min


def attention_weights(query: torch.Tensor, key: torch.Tensor,
                      additive_mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d_k) + mask): how much each query attends to each key.

    query, key: (B, nh, T, hs); additive_mask broadcasts to (B, nh, T, T). Returns (B, nh, T, T).
    """
    d_k = query.size(-1)
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (B, nh, T, T)
    if additive_mask is not None:
        scores = scores + additive_mask
    return torch.softmax(scores, dim=-1)  # each query's weights over the keys sum to 1


def scaled_dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 additive_mask: torch.Tensor | None = None,
                                 dropout: nn.Module | None = None) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d_k) + mask) V: the values averaged by the attention weights.

    query, key, value: (B, nh, T, hs); additive_mask broadcasts to (B, nh, T, T).
    Returns (B, nh, T, hs).
    """
    weights = attention_weights(query, key, additive_mask)  # (B, nh, T, T)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ value  # (B, nh, T, hs)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, H) -> (B, nh, T, hs)."""
    B, T, H = x.shape
    return x.view(B, T, num_heads, H // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, hs) -> (B, T, H): the inverse of split_heads."""
    B, nh, T, hs = x.shape
    return x.transpose(1, 2).contiguous().view(B, T, nh * hs)


class MultiHeadSelfAttention(nn.Module):
    """Project to queries, keys and values, attend in every head, merge, project back."""

    def __init__(self, hidden_size: int, num_heads: int, attention_dropout: float = 0.0,
                 implementation: str = "plain"):
        super().__init__()
        self.num_heads = num_heads
        self.implementation = implementation
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(attention_dropout)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, H); additive_mask: (B, 1, 1, T) or None
        q = split_heads(self.query(x), self.num_heads)  # (B, nh, T, hs)
        k = split_heads(self.key(x), self.num_heads)    # (B, nh, T, hs)
        v = split_heads(self.value(x), self.num_heads)  # (B, nh, T, hs)
        if self.implementation == "sdpa":
            # the same computation, fused by torch
            p = self.dropout.p if self.training else 0.0
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=additive_mask, dropout_p=p)
        else:
            context = scaled_dot_product_attention(q, k, v, additive_mask, self.dropout)
        return self.output(merge_heads(context))  # (B, T, H)
