"""minbert_lib.checks: the reference passes, and each common mistake gets its own message.

Every mistaken implementation below is written the way a student would write it; the test
asserts that the check names that mistake.
"""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.optim import Optimizer

from minbert_lib import checks
from minbert_lib.attention import (MultiHeadSelfAttention, merge_heads, padding_mask_to_additive,
                                   scaled_dot_product_attention, split_heads)
from minbert_lib.checks import MISTAKES, CheckError
from minbert_lib.model import BertEmbeddings, BertLayer, BertModel, FeedForward
from minbert_lib.optim import AdamW

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


@pytest.fixture
def in_assignment(monkeypatch):
    """Run the checks as if the notebook of `assignment` were open."""
    def enter(assignment: str) -> None:
        monkeypatch.setenv("MINBERT_ASSIGNMENT_DIR", str(SOLUTIONS / assignment))
    return enter


def weights_of(attention_fn):
    """An attention-weights function from an attention function: attend over the identity."""
    return lambda q, k, mask=None: attention_fn(q, k, torch.eye(q.size(-2)).expand(*q.shape[:-1], q.size(-2)), mask)


# --- mistaken attention ------------------------------------------------------------------------

def attention_no_scale(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    return torch.softmax(scores if mask is None else scores + mask, dim=-1) @ v


def attention_scale_dk(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / q.size(-1)
    return torch.softmax(scores if mask is None else scores + mask, dim=-1) @ v


def softmax_wrong_axis(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    return torch.softmax(scores if mask is None else scores + mask, dim=-2) @ v


def mask_after_softmax(q, k, v, mask=None):
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)
    if mask is not None:
        weights = weights.masked_fill(mask < 0, 0.0)
    return weights @ v


def mask_wrong_sign(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    return torch.softmax(scores if mask is None else scores - mask, dim=-1) @ v


def mask_ignored(q, k, v, mask=None):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1) @ v


def padding_mask_inverted(mask, dtype):
    return mask[:, None, None, :].to(dtype) * torch.finfo(dtype).min


def padding_mask_positive(mask, dtype):
    return (1.0 - mask[:, None, None, :].to(dtype)) * 1e9


def padding_mask_query_axis(mask, dtype):
    return (1.0 - mask[:, None, :, None].to(dtype)) * -1e9


def split_heads_no_transpose(x, nh):
    B, T, H = x.shape
    return x.view(B, T, nh, H // nh)


def split_heads_reshape(x, nh):
    B, T, H = x.shape
    return x.reshape(B, nh, T, H // nh)


def merge_heads_order(x):
    B, nh, T, hs = x.shape
    return x.reshape(B, T, nh * hs)


class SelfAttentionNoOutput(MultiHeadSelfAttention):
    def forward(self, x, additive_mask=None):
        q, k, v = (split_heads(p(x), self.num_heads) for p in (self.query, self.key, self.value))
        return merge_heads(scaled_dot_product_attention(q, k, v, additive_mask))


class SelfAttentionMaskIgnored(MultiHeadSelfAttention):
    def forward(self, x, additive_mask=None):
        return super().forward(x)


# --- mistaken BERT pieces ----------------------------------------------------------------------

class EmbeddingsNoPosition(BertEmbeddings):
    def forward(self, input_ids, token_type_ids):
        return self.layer_norm(self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids))


class EmbeddingsNoTokenType(BertEmbeddings):
    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.size(1))
        return self.layer_norm(self.word_embeddings(input_ids) + self.position_embeddings(positions))


class EmbeddingsNoLayerNorm(BertEmbeddings):
    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.size(1))
        return (self.word_embeddings(input_ids) + self.position_embeddings(positions)
                + self.token_type_embeddings(token_type_ids))


class FeedForwardRelu(FeedForward):
    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


class FeedForwardTanhGelu(FeedForward):
    def forward(self, x):
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class LayerPreNorm(BertLayer):
    def forward(self, x, additive_mask):
        x = x + self.attention(self.attention_norm(x), additive_mask)
        return x + self.feed_forward(self.ffn_norm(x))


class LayerNoResidual(BertLayer):
    def forward(self, x, additive_mask):
        x = self.attention_norm(self.attention(x, additive_mask))
        return self.ffn_norm(self.feed_forward(x))


class LayerNormShared(BertLayer):
    def forward(self, x, additive_mask):
        x = self.attention_norm(x + self.attention(x, additive_mask))
        return self.attention_norm(x + self.feed_forward(x))


class LayerMaskIgnored(BertLayer):
    def forward(self, x, additive_mask):
        return super().forward(x, None)


class ModelNoMask(BertModel):
    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return super().forward(input_ids, None, token_type_ids)


# --- a mistaken AdamW, one flag per mistake ------------------------------------------------------

class MistakenAdamW(Optimizer):
    mistake = ""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["t"] += 1
                g = p.grad + wd * p if self.mistake == "adamw_l2" else p.grad
                state["m"] = b1 * state["m"] + (1 - b1) * g
                state["v"] = b2 * state["v"] + (1 - b2) * g * g
                m_hat, v_hat = state["m"], state["v"]
                if self.mistake != "adamw_no_bias_correction":
                    m_hat, v_hat = m_hat / (1 - b1 ** state["t"]), v_hat / (1 - b2 ** state["t"])
                if self.mistake == "adamw_decay_without_lr":
                    p -= wd * p
                elif self.mistake not in ("adamw_l2", "adamw_no_decay"):
                    p -= lr * wd * p
                p -= lr * m_hat / (v_hat.sqrt() + eps)


def mistaken_adamw(mistake: str):
    return type(f"AdamW_{mistake}", (MistakenAdamW,), {"mistake": mistake})


# (mistake, assignment, check, the mistaken implementation)
CASES = [
    ("attention_no_scale", "01_attention", checks.check_attention, attention_no_scale),
    ("attention_scale_dk", "01_attention", checks.check_attention, attention_scale_dk),
    ("softmax_wrong_axis", "01_attention", checks.check_attention_weights, weights_of(softmax_wrong_axis)),
    ("mask_after_softmax", "01_attention", checks.check_attention, mask_after_softmax),
    ("mask_wrong_sign", "01_attention", checks.check_attention_weights, weights_of(mask_wrong_sign)),
    ("mask_ignored", "01_attention", checks.check_attention, mask_ignored),
    ("padding_mask_inverted", "01_attention", checks.check_padding_mask, padding_mask_inverted),
    ("padding_mask_positive", "01_attention", checks.check_padding_mask, padding_mask_positive),
    ("padding_mask_query_axis", "01_attention", checks.check_padding_mask, padding_mask_query_axis),
    ("split_heads_no_transpose", "01_attention", checks.check_split_heads, split_heads_no_transpose),
    ("split_heads_reshape", "01_attention", checks.check_split_heads, split_heads_reshape),
    ("merge_heads_order", "01_attention", checks.check_merge_heads, merge_heads_order),
    ("self_attention_no_output", "01_attention", checks.check_self_attention, SelfAttentionNoOutput),
    ("mask_ignored", "01_attention", checks.check_self_attention, SelfAttentionMaskIgnored),
    ("embeddings_no_position", "02_bert", checks.check_embeddings, EmbeddingsNoPosition),
    ("embeddings_no_token_type", "02_bert", checks.check_embeddings, EmbeddingsNoTokenType),
    ("embeddings_no_layer_norm", "02_bert", checks.check_embeddings, EmbeddingsNoLayerNorm),
    ("feed_forward_relu", "02_bert", checks.check_feed_forward, FeedForwardRelu),
    ("feed_forward_tanh_gelu", "02_bert", checks.check_feed_forward, FeedForwardTanhGelu),
    ("layer_pre_norm", "02_bert", checks.check_bert_layer, LayerPreNorm),
    ("layer_no_residual", "02_bert", checks.check_bert_layer, LayerNoResidual),
    ("layer_norm_shared", "02_bert", checks.check_bert_layer, LayerNormShared),
    ("mask_ignored", "02_bert", checks.check_bert_layer, LayerMaskIgnored),
    ("model_no_mask", "02_bert", checks.check_bert_model, ModelNoMask),
    ("model_no_mask", "02_bert", checks.check_padding_invariance, ModelNoMask),
    ("adamw_no_bias_correction", "03_adamw", checks.check_adamw_first_step, mistaken_adamw("adamw_no_bias_correction")),
    ("adamw_no_bias_correction", "03_adamw", checks.check_adamw_trajectory, mistaken_adamw("adamw_no_bias_correction")),
    ("adamw_l2", "03_adamw", checks.check_adamw_decay, mistaken_adamw("adamw_l2")),
    ("adamw_l2", "03_adamw", checks.check_adamw_trajectory, mistaken_adamw("adamw_l2")),
    ("adamw_decay_without_lr", "03_adamw", checks.check_adamw_decay, mistaken_adamw("adamw_decay_without_lr")),
    ("adamw_no_decay", "03_adamw", checks.check_adamw_trajectory, mistaken_adamw("adamw_no_decay")),
]


@pytest.mark.parametrize("mistake, assignment, check, wrong", CASES,
                         ids=[f"{c[0]}-{c[2].__name__}" for c in CASES])
def test_check_names_the_mistake(in_assignment, mistake, assignment, check, wrong):
    in_assignment(assignment)
    with pytest.raises(CheckError) as err:
        check(wrong)
    assert MISTAKES[mistake] in str(err.value)


def test_every_mistake_has_a_test():
    assert {c[0] for c in CASES} | {"pretrained_train_mode"} == set(MISTAKES)


def test_pretrained_model_in_training_mode_is_named(in_assignment):
    in_assignment("02_bert")
    with pytest.raises(CheckError, match="training mode"):
        checks.check_pretrained(lambda: BertModel(checks.BertConfig()).train())


def test_the_correct_adamw_passes_and_the_flagless_mistaken_one_too(in_assignment):
    in_assignment("03_adamw")
    for check in (checks.check_adamw_trajectory, checks.check_adamw_decay, checks.check_adamw_first_step):
        check(AdamW)
        check(mistaken_adamw(""))  # the test's optimizer without a mistake is a correct AdamW
        check(AdamW, seed=7, lr=0.02, betas=(0.8, 0.99))


def test_the_reference_passes_every_check_on_stored_and_fresh_cases(in_assignment):
    in_assignment("01_attention")
    checks.check_padding_mask(padding_mask_to_additive)
    checks.check_attention_weights(weights_of(scaled_dot_product_attention))
    for seed in (None, 5):
        checks.check_attention(scaled_dot_product_attention, seed=seed)
        checks.check_split_heads(split_heads, seed=seed)
        checks.check_merge_heads(merge_heads, seed=seed)
        checks.check_self_attention(MultiHeadSelfAttention, seed=seed)
    checks.check_attention(scaled_dot_product_attention, seed=3, shape=(1, 3, 7, 8))
    in_assignment("02_bert")
    for seed in (None, 4):
        checks.check_embeddings(BertEmbeddings, seed=seed)
        checks.check_feed_forward(FeedForward, seed=seed)
        checks.check_bert_layer(BertLayer, seed=seed)
        checks.check_bert_model(BertModel, seed=seed)
    checks.check_padding_invariance(BertModel)


@pytest.mark.pretrained
def test_the_pretrained_reference_passes(in_assignment):
    in_assignment("02_bert")
    checks.check_pretrained(lambda: BertModel.from_pretrained("minilm-l6"))


def test_an_unknown_mistake_reports_the_difference_and_shape(in_assignment):
    in_assignment("01_attention")
    with pytest.raises(CheckError, match="differs from the reference by up to"):
        checks.check_attention(lambda q, k, v, mask=None: scaled_dot_product_attention(q, k, v, mask) * 1.1)
    with pytest.raises(CheckError, match=r"expected shape \(2, 2, 5, 4\), got \(2, 2, 5, 5\)"):
        checks.check_attention(lambda q, k, v, mask=None: q @ k.transpose(-2, -1))
    with pytest.raises(CheckError, match="NaN or inf"):
        checks.check_attention(lambda q, k, v, mask=None: scaled_dot_product_attention(q, k, v) / 0.0)
    with pytest.raises(CheckError, match="expected a torch.Tensor, got NoneType"):
        checks.check_attention(lambda q, k, v, mask=None: None)


def test_renamed_parameters_are_reported(in_assignment):
    in_assignment("02_bert")

    class Renamed(FeedForward):
        def __init__(self, config):
            super().__init__(config)
            self.fc1 = self.up
            del self.up

    with pytest.raises(CheckError, match=r"has parameters \['fc1.bias', 'fc1.weight'\].*keep the __init__"):
        checks.check_feed_forward(Renamed)


def test_a_missing_sanity_file_says_where_to_run(monkeypatch, tmp_path):
    monkeypatch.setenv("MINBERT_ASSIGNMENT_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="run the notebook from its own folder"):
        checks.check_attention(scaled_dot_product_attention)


def test_a_check_of_another_assignment_says_so(in_assignment):
    in_assignment("03_adamw")
    with pytest.raises(KeyError, match="belongs to another assignment"):
        checks.check_attention(scaled_dot_product_attention)
