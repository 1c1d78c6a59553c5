"""Compare the kit's BertModel with transformers.BertModel on the same weights and batch.

transformers is a test-and-demo dependency only: the library never needs it to work.
"""
from __future__ import annotations

import torch


def transformers_model_from(model) -> "torch.nn.Module | None":
    """A transformers.BertModel holding the kit model's weights, or None without transformers."""
    try:
        from transformers import BertConfig as HFConfig, BertModel as HFBertModel
    except ImportError:
        return None
    from minbert_lib.weights import kit_to_hf_name

    cfg = model.config
    hf_config = HFConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings, type_vocab_size=cfg.type_vocab_size,
        layer_norm_eps=cfg.layer_norm_eps, pad_token_id=cfg.pad_token_id, hidden_act="gelu",
        hidden_dropout_prob=cfg.hidden_dropout, attention_probs_dropout_prob=cfg.attention_dropout,
    )
    hf_model = HFBertModel(hf_config)
    hf_state = {kit_to_hf_name(k): v for k, v in model.state_dict().items()}
    hf_model.load_state_dict(hf_state, strict=False)
    missing = [k for k in hf_model.state_dict() if k not in hf_state and not k.endswith("position_ids")]
    if missing:
        raise RuntimeError(f"transformers.BertModel has parameters the kit model lacks: {missing[:5]}")
    return hf_model.eval()


@torch.no_grad()
def compare_with_transformers(model, batch: dict[str, torch.Tensor]) -> dict | None:
    """Max abs differences (at real tokens, and of the pooler) between the kit and transformers."""
    hf_model = transformers_model_from(model)
    if hf_model is None:
        return None
    was_training = model.training
    model.eval()
    ours = model(**batch)
    theirs = hf_model(**batch)
    model.train(was_training)
    real = batch["attention_mask"].bool()  # (B, T)
    hidden = (ours.last_hidden_state - theirs.last_hidden_state)[real].abs().max().item()
    pooler = (ours.pooler_output - theirs.pooler_output).abs().max().item()
    return {"hidden_max_abs_diff": hidden, "pooler_max_abs_diff": pooler, "max_abs_diff": max(hidden, pooler)}
