"""Heads, losses and layer freezing of MultitaskBert, on the tiny config."""
import math

import pytest
import torch
import torch.nn.functional as F

from minbert_lib.config import model_config
from minbert_lib.losses import cosent_loss, dataset_share_weights, multiple_negatives_ranking_loss
from minbert_lib.model import BertModel
from minbert_lib.multitask import (PARAPHRASE_HEADS, HeadConfig, MultitaskBert, PairHead, freeze_all_but_last,
                                  pair_encoding_of)


def tiny_multitask(**heads):
    torch.manual_seed(0)
    return MultitaskBert(BertModel(model_config("tiny", num_layers=6, hidden_dropout=0.0, attention_dropout=0.0)),
                         HeadConfig(dropout=0.0, **heads))


def encoding(ids):
    ids = torch.tensor(ids)
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}


def test_mnr_loss_equals_the_hand_computed_value():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    positives = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    # cosines: row 0 -> [1/sqrt2, 0], row 1 -> [1/sqrt2, 1]; scores = 20 * cos
    c = 1 / math.sqrt(2)
    loss_row0 = -math.log(math.exp(20 * c) / (math.exp(20 * c) + math.exp(0.0)))
    loss_row1 = -math.log(math.exp(20.0) / (math.exp(20 * c) + math.exp(20.0)))
    expected = (loss_row0 + loss_row1) / 2
    assert multiple_negatives_ranking_loss(anchors, positives).item() == pytest.approx(expected, rel=1e-4)  # float32


def test_cosent_is_zero_only_when_the_order_is_right():
    labels = torch.tensor([0.0, 2.5, 5.0])
    right = cosent_loss(torch.tensor([-0.5, 0.2, 0.9]), labels)
    wrong = cosent_loss(torch.tensor([0.9, 0.2, -0.5]), labels)
    assert right.item() < 1e-3 < wrong.item()
    # by hand, for two examples: log(1 + exp(20 * (p_low - p_high)))
    two = cosent_loss(torch.tensor([0.3, 0.1]), torch.tensor([1.0, 4.0]))
    assert two.item() == pytest.approx(math.log1p(math.exp(20 * 0.2)), rel=1e-5)


def test_reweighting_is_the_dataset_share():
    assert dataset_share_weights({"sst": 1, "quora": 2, "sts": 1}) == {"sst": 0.25, "quora": 0.5, "sts": 0.25}


@pytest.mark.parametrize("k", [2, 4])
def test_freezing_leaves_exactly_the_last_k_layers_and_the_heads_trainable(k):
    model = tiny_multitask()
    freeze_all_but_last(model, k)
    trainable_layers = sorted({int(name.split(".")[2]) for name, p in model.named_parameters()
                               if p.requires_grad and name.startswith("encoder.layers.")})
    assert trainable_layers == list(range(6 - k, 6))
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    assert all(p.requires_grad for p in model.sentiment.parameters())
    assert all(p.requires_grad for p in model.encoder.pooler.parameters())


def test_cos_heads_follow_their_formulas():
    model = tiny_multitask(similarity_head="cos", paraphrase_head="cos")
    a, b = encoding([[5, 6, 7, 0], [8, 9, 0, 0]]), encoding([[5, 6, 0], [10, 11, 12]])
    u, v = model.embed(a), model.embed(b)
    cos = F.cosine_similarity(u, v, dim=-1)
    assert torch.allclose(model.similarity_scores(a, b), 5 * F.relu(cos), atol=1e-5)
    assert torch.allclose(model.paraphrase_logits(a, b), cos, atol=1e-5)


def test_scaled_cos_paraphrase_head_learns_its_scale_and_threshold():
    model = tiny_multitask(paraphrase_head="cos-scaled")
    a, b = encoding([[5, 6, 7, 0], [8, 9, 0, 0]]), encoding([[5, 6, 0], [10, 11, 12]])
    cos = F.cosine_similarity(model.embed(a), model.embed(b), dim=-1)
    logits = model.paraphrase_logits(a, b)
    assert torch.allclose(logits, 20.0 * (cos - 0.8), atol=1e-4)
    logits.sum().backward()
    assert model.paraphrase.scale.grad is not None and model.paraphrase.threshold.grad is not None


def test_cos_cross_head_starts_as_the_scaled_cosine_and_learns_a_cross_term():
    model = tiny_multitask(paraphrase_head="cos-cross")
    a, b = encoding([[5, 6, 7, 0], [8, 9, 0, 0]]), encoding([[5, 6, 0], [10, 11, 12]])
    pair = encoding([[5, 6, 7, 5, 6, 0], [8, 9, 10, 11, 12, 0]])
    pair["token_type_ids"][:, 3:] = 1
    cos = F.cosine_similarity(model.embed(a), model.embed(b), dim=-1)
    logits = model.paraphrase_logits(a, b, pair)
    assert torch.allclose(logits, 20.0 * (cos - 0.8), atol=1e-4)  # the cross term starts at zero
    logits.sum().backward()
    assert model.paraphrase.cross.linear.weight.grad.abs().sum() > 0  # ... and learns from the first step
    with torch.no_grad():
        model.paraphrase.cross.linear.bias.fill_(1.5)
    assert torch.allclose(model.paraphrase_logits(a, b, pair), logits + 1.5, atol=1e-4)


def test_embedding_a_pair_in_one_call_equals_two_calls():
    model = tiny_multitask(pooling="mean").eval()
    a, b = encoding([[5, 6, 7, 0], [8, 9, 0, 0]]), encoding([[5, 6], [10, 11]])
    u, v = model.embed_pair(a, b)
    assert torch.allclose(u, model.embed(a), atol=1e-5) and torch.allclose(v, model.embed(b), atol=1e-5)


def test_unknown_head_is_a_clear_error():
    with pytest.raises(ValueError, match="paraphrase_head='dot'"):
        HeadConfig(paraphrase_head="dot")


class PairMargin(PairHead):
    """A toy head for the test below: u . v minus a learned margin."""

    def __init__(self, hidden_size, config):
        super().__init__(hidden_size, config)
        self.margin = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, u, v, joint=None):
        return (u * v).sum(-1) - self.margin


def test_a_new_head_is_a_class_and_one_line_in_its_table(monkeypatch):
    monkeypatch.setitem(PARAPHRASE_HEADS, "dot", PairMargin)
    model = tiny_multitask(paraphrase_head="dot")
    a, b = encoding([[5, 6, 7, 0], [8, 9, 0, 0]]), encoding([[5, 6, 0], [10, 11, 12]])
    expected = (model.embed(a) * model.embed(b)).sum(-1) - 0.5
    assert torch.allclose(model.paraphrase_logits(a, b), expected, atol=1e-4)
    assert "paraphrase.margin" in dict(model.named_parameters())  # a head parameter: head_lr_scale applies
    assert pair_encoding_of(PairMargin) == "bi" and pair_encoding_of(PARAPHRASE_HEADS["cross"]) == "cross"
    assert pair_encoding_of(PARAPHRASE_HEADS["cos-cross"]) == "both"
