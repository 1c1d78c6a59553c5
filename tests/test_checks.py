"""minbert_lib.checks (the grading modules behind it): the reference passes, and each common
mistake gets its own message.

Every mistaken implementation below is written the way a student would write it; the test
asserts that the check names that mistake.
"""
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.optim import Optimizer

from minbert_lib import checks
from minbert_lib.attention import (MultiHeadSelfAttention, merge_heads, padding_mask_to_additive,
                                   scaled_dot_product_attention, split_heads)
from minbert_lib.checks import MISTAKES, CheckError
from minbert_lib.grading import common as grading_common
from minbert_lib.model import BertEmbeddings, BertLayer, BertModel, FeedForward, mean_pool
from minbert_lib.optim import AdamW
from minbert_lib.losses import dataset_share_weights, multiple_negatives_ranking_loss
from minbert_lib.tasks import task_loss as reference_task_loss
from minbert_lib.multitask import freeze_all_but_last
from minbert_lib.config import BertConfig
from minbert_lib.multitask import MultitaskHeads, SentimentClassifier
from minbert_lib.schedules import SCHEDULES

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
        self.steps = getattr(self, "steps", 0) + 1  # for the shared-counter mistake
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["t"] += 1
                t = {"adamw_step_from_zero": state["t"] - 1, "adamw_shared_step": self.steps}.get(self.mistake,
                                                                                                   state["t"])
                g = p.grad + wd * p if self.mistake == "adamw_l2" else p.grad
                state["m"] = b1 * state["m"] + (1 - b1) * g
                state["v"] = b2 * state["v"] + (1 - b2) * g * g
                m_hat, v_hat = state["m"], state["v"]
                if self.mistake != "adamw_no_bias_correction":
                    m_hat, v_hat = m_hat / (1 - b1 ** t), v_hat / (1 - b2 ** t)
                if self.mistake == "adamw_decay_without_lr":
                    p -= wd * p
                elif self.mistake not in ("adamw_l2", "adamw_no_decay"):
                    p -= lr * wd * p
                p -= lr * m_hat / (v_hat.sqrt() + eps)


def mistaken_adamw(mistake: str):
    return type(f"AdamW_{mistake}", (MistakenAdamW,), {"mistake": mistake})


# --- mistaken sentiment pieces (04) -------------------------------------------------------------

def mean_pool_padding(hidden, mask):
    return hidden.mean(dim=1)


def mean_pool_sum(hidden, mask):
    return (hidden * mask[..., None]).sum(dim=1)


class ClassifierSoftmax(SentimentClassifier):
    def forward(self, input_ids, attention_mask):
        return super().forward(input_ids, attention_mask).softmax(dim=-1)


class ClassifierClsToken(SentimentClassifier):
    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids, attention_mask).last_hidden_state
        return self.classifier(self.dropout(hidden[:, 0]))


class ClassifierNoMask(SentimentClassifier):
    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids).last_hidden_state
        return self.classifier(self.dropout(mean_pool(hidden, attention_mask)))


class ClassifierNoDropout(SentimentClassifier):
    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids, attention_mask).last_hidden_state
        return self.classifier(mean_pool(hidden, attention_mask))


def mistaken_train_step(mistake: str):
    def train_step(model, optimizer, input_ids, attention_mask, labels):
        if mistake != "train_step_no_zero_grad":
            optimizer.zero_grad()
        logits = model(input_ids, attention_mask)
        if mistake == "train_step_softmax_loss":
            logits = logits.softmax(dim=-1)
        loss = F.cross_entropy(logits, labels)
        if mistake != "train_step_no_backward":
            loss.backward()
        if mistake != "train_step_no_step":
            optimizer.step()
        return loss.item()
    return train_step


def freeze_with_eval(model):
    model.encoder.eval()


def freeze_everything(model):
    for p in model.parameters():
        p.requires_grad = False


def freeze_encoder(model):
    for p in model.encoder.parameters():
        p.requires_grad = False


# --- mistaken multitask pieces (05) -------------------------------------------------------------

class HeadsSoftmax(MultitaskHeads):
    def sentiment_logits(self, u):
        return super().sentiment_logits(u).softmax(dim=-1)


class HeadsParaphraseSigmoid(MultitaskHeads):
    def paraphrase_logits(self, u, v):
        return torch.sigmoid(super().paraphrase_logits(u, v))


class HeadsSwapped(MultitaskHeads):
    def similarity_scores(self, u, v):
        return self.paraphrase(self.dropout(torch.cat([u, v], dim=-1))).squeeze(-1)


class HeadsNoDropout(MultitaskHeads):
    def similarity_scores(self, u, v):
        return self.similarity(torch.cat([u, v], dim=-1)).squeeze(-1)


def mistaken_task_loss(mistake: str):
    def task_loss(task, outputs, labels):
        if task == "quora" and mistake == "bce_sigmoid_twice":
            return F.binary_cross_entropy_with_logits(torch.sigmoid(outputs), labels.float())
        if task == "sts" and mistake == "sts_loss_l1":
            return (outputs - labels).abs().mean()
        return reference_task_loss(task, outputs, labels)
    return task_loss


def tm1_no_restart(streams):
    for _ in range(max(s.batches_per_pass for s in streams.values())):
        yield {task: stream.next_batch() for task, stream in streams.items()}


def tm2_restarts(streams):
    for stream in streams.values():
        stream.start_new_pass()
    for _ in range(min(s.batches_per_pass for s in streams.values())):
        yield {task: stream.next_batch() for task, stream in streams.items()}


def tm_wrong_length(pick):
    def epoch(streams):
        if pick is min:  # a TM1 that stops at the smallest dataset
            for stream in streams.values():
                stream.start_new_pass()
        for _ in range(pick(s.batches_per_pass for s in streams.values())):
            yield {task: stream.next_batch() for task, stream in streams.items()}
    return epoch


def baseline_all_tasks(streams):
    streams["sst"].start_new_pass()
    for _ in range(streams["sst"].batches_per_pass):
        yield {"sst": streams["sst"].next_batch(), "sts": [0]}


def pearson_not_centered(x, y):
    return (x * y).sum() / (x.norm() * y.norm())


def pearson_covariance(x, y):
    return ((x - x.mean()) * (y - y.mean())).mean()


def confusion_transposed(gold, predicted, num_classes):
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for g, p in zip(gold.tolist(), predicted.tolist()):
        matrix[p, g] += 1
    return matrix


# --- mistaken extensions (06) ----------------------------------------------------------------------

def cos_s_no_relu(u, v):
    return 5 * F.cosine_similarity(u, v, dim=-1)


def cos_s_no_scale(u, v):
    return F.relu(F.cosine_similarity(u, v, dim=-1))


def cos_s_dot(u, v):
    return 5 * F.relu((u * v).sum(-1))


def cos_p_no_sigmoid(u, v):
    return F.cosine_similarity(u, v, dim=-1)


def freeze_first_k(model, k):
    for p in model.encoder.embeddings.parameters():
        p.requires_grad = False
    for index, layer in enumerate(model.encoder.layers):
        for p in layer.parameters():
            p.requires_grad = index < k


def freeze_layers_only(model, k):
    for layer in model.encoder.layers[:len(model.encoder.layers) - k]:
        for p in layer.parameters():
            p.requires_grad = False


def freeze_heads_too(model, k):
    for p in model.parameters():
        p.requires_grad = False
    for layer in model.encoder.layers[len(model.encoder.layers) - k:]:
        for p in layer.parameters():
            p.requires_grad = True


def freeze_by_eval(model, k):
    model.encoder.embeddings.eval()
    for layer in model.encoder.layers[:len(model.encoder.layers) - k]:
        layer.eval()


def mnr_no_scale(a, p, scale=20.0):
    return multiple_negatives_ranking_loss(a, p, scale=1.0)


def mnr_zero_targets(a, p, scale=20.0):
    scores = scale * F.normalize(a, dim=-1) @ F.normalize(p, dim=-1).T
    return F.cross_entropy(scores, torch.zeros(a.size(0), dtype=torch.long))


def mnr_reversed_targets(a, p, scale=20.0):
    scores = scale * F.normalize(a, dim=-1) @ F.normalize(p, dim=-1).T
    return F.cross_entropy(scores, torch.arange(a.size(0) - 1, -1, -1))


def mnr_dot_product(a, p, scale=20.0):
    return F.cross_entropy(scale * a @ p.T, torch.arange(a.size(0)))


def rw_inverse(sizes):
    inverse = {t: 1 / n for t, n in sizes.items()}
    return {t: w / sum(inverse.values()) for t, w in inverse.items()}


def rw_raw(sizes):
    return dict(sizes)


# --- mistakes found only by the newer checks ------------------------------------------------------

def attention_scale_in_place(q, k, v, mask=None):
    q /= math.sqrt(q.size(-1))  # changes the caller's tensor
    scores = q @ k.transpose(-2, -1)
    return torch.softmax(scores if mask is None else scores + mask, dim=-1) @ v


def padding_mask_float32_only(mask, dtype):
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


class ModelSegmentOneByDefault(BertModel):
    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        if token_type_ids is None:
            token_type_ids = torch.ones_like(input_ids)
        return super().forward(input_ids, attention_mask, token_type_ids)


class EmbeddingsNoDropout(BertEmbeddings):
    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.size(1))
        return self.layer_norm(self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
                               + self.token_type_embeddings(token_type_ids))


class LayerNoHiddenDropout(BertLayer):
    def forward(self, x, additive_mask):
        x = self.attention_norm(x + self.attention(x, additive_mask))
        return self.ffn_norm(x + self.feed_forward(x))


class LayerDropoutAfterNorm(BertLayer):
    def forward(self, x, additive_mask):
        x = self.dropout(self.attention_norm(x + self.attention(x, additive_mask)))
        return self.dropout(self.ffn_norm(x + self.feed_forward(x)))


class ClassifierDropoutBeforePooling(SentimentClassifier):
    def forward(self, input_ids, attention_mask):
        hidden = self.dropout(self.encoder(input_ids, attention_mask).last_hidden_state)
        return self.classifier(mean_pool(hidden, attention_mask))


class HeadsDropoutAfterLinear(MultitaskHeads):
    def sentiment_logits(self, u):
        return self.dropout(self.sentiment(u))


AdamWStepFromZero = mistaken_adamw("adamw_step_from_zero")  # t used before it is incremented
AdamWSharedStep = mistaken_adamw("adamw_shared_step")        # one step counter for the whole optimizer


def check_freeze(k):
    return lambda fn: checks.check_freeze_all_but_last(fn, k=k)


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
    ("mean_pool_padding", "04_sentiment", checks.check_mean_pool, mean_pool_padding),
    ("mean_pool_sum", "04_sentiment", checks.check_mean_pool, mean_pool_sum),
    ("classifier_softmax", "04_sentiment", checks.check_sentiment_classifier, ClassifierSoftmax),
    ("classifier_cls_token", "04_sentiment", checks.check_sentiment_classifier, ClassifierClsToken),
    ("classifier_no_mask", "04_sentiment", checks.check_sentiment_classifier, ClassifierNoMask),
    ("classifier_no_dropout", "04_sentiment", checks.check_sentiment_classifier, ClassifierNoDropout),
    *((mistake, "04_sentiment", lambda fn: checks.check_train_step(fn, SentimentClassifier), mistaken_train_step(mistake))
      for mistake in ("train_step_no_backward", "train_step_no_step", "train_step_no_zero_grad",
                      "train_step_softmax_loss")),
    ("frozen_still_training", "04_sentiment", lambda fn: checks.check_freeze_encoder(fn, SentimentClassifier),
     freeze_with_eval),
    ("freeze_head_too", "04_sentiment", lambda fn: checks.check_freeze_encoder(fn, SentimentClassifier),
     freeze_everything),
    ("heads_softmax", "05_multitask", checks.check_multitask_heads, HeadsSoftmax),
    ("paraphrase_sigmoid", "05_multitask", checks.check_multitask_heads, HeadsParaphraseSigmoid),
    ("heads_swapped", "05_multitask", checks.check_multitask_heads, HeadsSwapped),
    ("heads_no_dropout", "05_multitask", checks.check_multitask_heads, HeadsNoDropout),
    ("bce_sigmoid_twice", "05_multitask", checks.check_task_loss, mistaken_task_loss("bce_sigmoid_twice")),
    ("sts_loss_l1", "05_multitask", checks.check_task_loss, mistaken_task_loss("sts_loss_l1")),
    ("tm1_no_restart", "05_multitask", lambda fn: checks.check_schedule("TM1", fn), tm1_no_restart),
    ("tm1_smallest", "05_multitask", lambda fn: checks.check_schedule("TM1", fn), tm_wrong_length(min)),
    ("tm2_restarts", "05_multitask", lambda fn: checks.check_schedule("TM2", fn), tm2_restarts),
    ("tm2_largest", "05_multitask", lambda fn: checks.check_schedule("TM2", fn), tm_wrong_length(max)),
    ("baseline_all_tasks", "05_multitask", lambda fn: checks.check_schedule("BL", fn), baseline_all_tasks),
    ("pearson_not_centered", "05_multitask", checks.check_pearson, pearson_not_centered),
    ("pearson_covariance", "05_multitask", checks.check_pearson, pearson_covariance),
    ("confusion_transposed", "05_multitask", checks.check_confusion_matrix, confusion_transposed),
    ("cos_s_no_relu", "06_extensions", checks.check_cos_similarity, cos_s_no_relu),
    ("cos_s_no_scale", "06_extensions", checks.check_cos_similarity, cos_s_no_scale),
    ("cos_dot_product", "06_extensions", checks.check_cos_similarity, cos_s_dot),
    ("cos_p_no_sigmoid", "06_extensions", checks.check_cos_paraphrase, cos_p_no_sigmoid),
    ("freeze_first_k", "06_extensions", check_freeze(2), freeze_first_k),
    ("freeze_embeddings_trainable", "06_extensions", check_freeze(4), freeze_layers_only),
    ("freeze_heads_frozen", "06_extensions", check_freeze(2), freeze_heads_too),
    ("frozen_still_training", "06_extensions", check_freeze(4), freeze_by_eval),
    ("mnr_no_scale", "06_extensions", checks.check_mnr_loss, mnr_no_scale),
    ("mnr_wrong_diagonal", "06_extensions", checks.check_mnr_loss, mnr_zero_targets),
    ("mnr_wrong_diagonal", "06_extensions", checks.check_mnr_loss, mnr_reversed_targets),
    ("mnr_no_normalize", "06_extensions", checks.check_mnr_loss, mnr_dot_product),
    ("rw_inverse", "06_extensions", checks.check_loss_weights, rw_inverse),
    ("rw_not_normalized", "06_extensions", checks.check_loss_weights, rw_raw),
    ("input_changed_in_place", "01_attention", checks.check_attention, attention_scale_in_place),
    ("padding_mask_dtype", "01_attention", checks.check_padding_mask, padding_mask_float32_only),
    ("model_default_arguments", "02_bert", checks.check_bert_model, ModelSegmentOneByDefault),
    ("dropout_missing", "02_bert", checks.check_embeddings, EmbeddingsNoDropout),
    ("layer_dropout_missing", "02_bert", checks.check_bert_layer, LayerNoHiddenDropout),
    ("dropout_wrong_place", "02_bert", checks.check_bert_layer, LayerDropoutAfterNorm),
    ("classifier_dropout_wrong_place", "04_sentiment", checks.check_sentiment_classifier,
     ClassifierDropoutBeforePooling),
    ("heads_dropout_wrong_place", "05_multitask", checks.check_multitask_heads, HeadsDropoutAfterLinear),
    ("adamw_shared_step", "03_adamw", checks.check_adamw_state, AdamWSharedStep),
]


@pytest.mark.parametrize("mistake, assignment, check, wrong", CASES,
                         ids=[f"{c[0]}-{c[2].__name__}-{i}" for i, c in enumerate(CASES)])
def test_check_names_the_mistake(in_assignment, mistake, assignment, check, wrong):
    in_assignment(assignment)
    with pytest.raises(CheckError) as err:
        check(wrong)
    assert MISTAKES[mistake] in str(err.value)


def test_every_mistake_has_a_test():
    assert {c[0] for c in CASES} | {"pretrained_train_mode", "single_class_predictions",
                                         "loss_not_decreasing"} == set(MISTAKES)


def test_pretrained_model_in_training_mode_is_named(in_assignment):
    in_assignment("02_bert")
    with pytest.raises(CheckError, match="training mode"):
        checks.check_pretrained(lambda: BertModel(BertConfig()).train())


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


def with_feed_forward(model: BertModel, feed_forward_cls) -> BertModel:
    """The model with each layer's feed-forward replaced by feed_forward_cls, same weights."""
    for layer in model.layers:
        replacement = feed_forward_cls(model.config)
        replacement.load_state_dict(layer.feed_forward.state_dict())
        layer.feed_forward = replacement
    return model.eval()


def test_the_pretrained_model_with_tanh_gelu_passes_and_relu_fails(in_assignment):
    """Google's BERT code used the tanh GELU: accepted, though MiniLM's states move past the 1e-4 budget."""
    in_assignment("02_bert")
    tanh_model = with_feed_forward(BertModel.from_pretrained("minilm-l6"), FeedForwardTanhGelu)
    batch = grading_common.load("pretrained")
    with torch.no_grad():
        moved = (tanh_model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).last_hidden_state
                 - batch["last_hidden_state"])[batch["attention_mask"].bool()].abs().max()
    assert moved > 1e-3  # a tolerance could not hold both forms
    checks.check_pretrained(lambda: tanh_model)
    with pytest.raises(CheckError, match="max abs difference"):
        checks.check_pretrained(lambda: with_feed_forward(BertModel.from_pretrained("minilm-l6"), FeedForwardRelu))


def test_an_unknown_mistake_reports_the_difference_and_shape(in_assignment):
    in_assignment("01_attention")
    with pytest.raises(CheckError, match=r"element \(\d+, \d+, \d+, \d+\) is .*, the reference .*; max abs difference"):
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


def test_the_reference_sentiment_pieces_pass(in_assignment):
    in_assignment("04_sentiment")
    for seed in (None, 3):
        checks.check_mean_pool(mean_pool, seed=seed)
        checks.check_sentiment_classifier(SentimentClassifier, seed=seed)
        checks.check_train_step(mistaken_train_step(""), SentimentClassifier, seed=seed)
        checks.check_freeze_encoder(freeze_encoder, SentimentClassifier, seed=seed)


def test_accuracy_floor_names_single_class_and_low_accuracy():
    gold = [0, 1, 1, 2, 3, 3, 3, 4, 1, 3]  # majority class 3: floor 0.4
    assert checks.check_above_majority([0, 1, 1, 2, 3, 3, 3, 4, 0, 0], gold) == pytest.approx(0.8)
    with pytest.raises(CheckError, match=MISTAKES["single_class_predictions"]):
        checks.check_above_majority([3] * 10, gold)
    with pytest.raises(CheckError, match="not above the majority-class floor 0.400"):
        checks.check_above_majority([3, 1, 0, 0, 3, 0, 0, 0, 1, 0], gold)


def test_the_reference_multitask_pieces_and_extensions_pass(in_assignment):
    in_assignment("05_multitask")
    for seed in (None, 8):
        checks.check_multitask_heads(MultitaskHeads, seed=seed)
        checks.check_task_loss(reference_task_loss, seed=seed)
        for name, schedule in SCHEDULES.items():
            checks.check_schedule(name, schedule.epoch, seed=seed)
        checks.check_pearson(lambda x, y: torch.corrcoef(torch.stack([x, y]))[0, 1], seed=seed)
        checks.check_confusion_matrix(lambda g, p, c: torch.bincount(g * c + p, minlength=c * c).view(c, c), seed=seed)
    in_assignment("06_extensions")
    for seed in (None, 8):
        checks.check_cos_similarity(lambda u, v: 5 * F.relu(F.cosine_similarity(u, v, dim=-1)), seed=seed)
        checks.check_cos_paraphrase(lambda u, v: torch.sigmoid(F.cosine_similarity(u, v, dim=-1)), seed=seed)
        checks.check_mnr_loss(multiple_negatives_ranking_loss, seed=seed)
        checks.check_loss_weights(dataset_share_weights, seed=seed)
    for k in range(7):
        checks.check_freeze_all_but_last(freeze_all_but_last, k=k)


def test_a_wrong_schedule_says_where_it_first_differs(in_assignment):
    in_assignment("05_multitask")

    def tm1_one_step_short(streams):
        steps = list(SCHEDULES["TM1"].epoch(streams))
        yield from steps[:-1]
    with pytest.raises(CheckError, match="epoch 1 has 7 steps \\(the reference 8\\)"):
        checks.check_schedule("TM1", tm1_one_step_short)


def test_loss_decrease_check():
    checks.check_loss_decreases([{"sst": 1.6, "sts": 4.0}, {"sst": 1.5, "sts": 2.0}])
    with pytest.raises(CheckError, match=MISTAKES["loss_not_decreasing"].split(":")[0]):
        checks.check_loss_decreases([{"sst": 1.6}, {"sst": 1.7}])
    with pytest.raises(CheckError, match="NaN"):
        checks.check_loss_decreases([{"sst": 1.6}, {"sst": float("nan")}])


# --- correct variants get full marks ----------------------------------------------------------------

def attention_einsum(q, k, v, mask=None):
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / q.size(-1) ** 0.5
    if mask is not None:
        scores = scores + mask
    return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1), v)


def attention_masked_fill(fill):
    def attention(q, k, v, mask=None):
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(mask < 0, fill)
        return F.softmax(scores, dim=-1) @ v
    return attention


def attention_manual_softmax(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores + mask
    e = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
    return (e / e.sum(dim=-1, keepdim=True)) @ v


def attention_loops(q, k, v, mask=None):
    B, nh, T, hs = q.shape
    out = q.new_zeros(B, nh, T, v.size(-1))
    for b in range(B):
        for h in range(nh):
            for i in range(T):
                scores = torch.stack([q[b, h, i] @ k[b, h, j] for j in range(T)]) / math.sqrt(hs)
                if mask is not None:
                    scores = scores + mask[b, 0, 0]
                weights = torch.softmax(scores, dim=0)
                out[b, h, i] = sum(weights[j] * v[b, h, j] for j in range(T))
    return out


def padding_mask_masked_fill(mask, dtype):
    return torch.zeros(mask.shape, dtype=dtype).masked_fill(mask == 0, torch.finfo(dtype).min)[:, None, None, :]


def padding_mask_large_negative(mask, dtype):
    return ((1 - mask) * -1e9).to(dtype).view(mask.size(0), 1, 1, mask.size(1))


def padding_mask_minus_inf(mask, dtype):
    return torch.where(mask.bool(), 0.0, float("-inf")).to(dtype).unsqueeze(1).unsqueeze(2)


def split_heads_permute(x, nh):
    B, T, H = x.shape
    return x.reshape(B, T, nh, -1).permute(0, 2, 1, 3)


def merge_heads_permute(x):
    B, nh, T, hs = x.shape
    return x.permute(0, 2, 1, 3).reshape(B, T, nh * hs)


class SelfAttentionPermute(MultiHeadSelfAttention):
    def forward(self, x, additive_mask=None):
        B, T, H = x.shape
        q, k, v = (p(x).view(B, T, self.num_heads, -1).permute(0, 2, 1, 3) for p in (self.query, self.key, self.value))
        context = attention_einsum(q, k, v, additive_mask)
        return self.output(context.permute(0, 2, 1, 3).reshape(B, T, H))


class FeedForwardErfGelu(FeedForward):
    def forward(self, x):
        h = self.up(x)
        return self.down(0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0))))


class FeedForwardTanhGelu(FeedForward):
    """GELU's tanh approximation, as in Google's original BERT code."""
    def forward(self, x):
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class LayerTanhGelu(BertLayer):
    def __init__(self, config):
        super().__init__(config)
        self.feed_forward = FeedForwardTanhGelu(config)


class ModelTanhGelu(BertModel):
    def __init__(self, config):
        super().__init__(config)
        for layer in self.layers:
            layer.feed_forward = FeedForwardTanhGelu(config)


class LayerFunctionalNorm(BertLayer):
    def forward(self, x, additive_mask):
        def norm(module, z):
            return F.layer_norm(z, module.normalized_shape, module.weight, module.bias, module.eps)
        x = norm(self.attention_norm, x + self.dropout(self.attention(x, additive_mask)))
        return norm(self.ffn_norm, x + self.dropout(self.feed_forward(x)))


class EmbeddingsFunctionalNorm(BertEmbeddings):
    def forward(self, input_ids, token_type_ids):
        ln = self.layer_norm
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) \
            + self.position_embeddings.weight[:input_ids.size(1)]
        return self.dropout(F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps))


class VariantAdamW(Optimizer):
    """A correct AdamW in one of the accepted forms, with out-of-place updates (p.data = ...)."""
    decay_after = efficient = decay_old_after = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def step(self):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] = state.get("step", 0) + 1
                t = state["step"]
                state["m"] = b1 * state.get("m", torch.zeros_like(p.data)) + (1 - b1) * p.grad.data
                state["v"] = b2 * state.get("v", torch.zeros_like(p.data)) + (1 - b2) * p.grad.data ** 2
                old = p.data
                if not (self.decay_after or self.decay_old_after):
                    p.data = p.data - lr * wd * p.data
                if self.efficient:
                    alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                    p.data = p.data - alpha * state["m"] / (state["v"].sqrt() + eps)
                else:
                    m_hat, v_hat = state["m"] / (1 - b1 ** t), state["v"] / (1 - b2 ** t)
                    p.data = p.data - lr * m_hat / (v_hat.sqrt() + eps)
                if self.decay_after:  # the CS224N handout: decay the updated weights
                    p.data = p.data - lr * wd * p.data
                if self.decay_old_after:  # after the update, from the weights before it
                    p.data = p.data - lr * wd * old


def variant_adamw(**flags):
    return type("VariantAdamW", (VariantAdamW,), flags)


ADAMW_VARIANTS = [variant_adamw(), variant_adamw(decay_after=True), variant_adamw(efficient=True),
                  variant_adamw(decay_after=True, efficient=True), variant_adamw(decay_old_after=True)]


def test_correct_attention_variants_pass(in_assignment):
    in_assignment("01_attention")
    for fn in (attention_einsum, attention_masked_fill(float("-inf")), attention_masked_fill(-1e9),
               attention_manual_softmax, attention_loops):
        checks.check_attention(fn)
        checks.check_attention(fn, seed=23, shape=(2, 3, 7, 5))
        checks.check_attention_weights(weights_of(fn))
    for fn in (padding_mask_masked_fill, padding_mask_large_negative, padding_mask_minus_inf):
        checks.check_padding_mask(fn)
        checks.check_padding_mask(fn, seed=11, batch=5, length=9)
    checks.check_split_heads(split_heads_permute)
    checks.check_merge_heads(merge_heads_permute)
    checks.check_self_attention(SelfAttentionPermute)
    checks.check_self_attention(SelfAttentionPermute, seed=41, hidden_size=24, num_heads=3, batch=3, length=6)


def test_correct_bert_variants_pass(in_assignment):
    in_assignment("02_bert")
    checks.check_feed_forward(FeedForwardErfGelu)
    checks.check_feed_forward(FeedForwardTanhGelu)
    checks.check_bert_layer(LayerTanhGelu)
    checks.check_bert_model(ModelTanhGelu)
    checks.check_bert_model(ModelTanhGelu, seed=61, batch=2, length=5)
    checks.check_bert_layer(LayerFunctionalNorm)
    checks.check_embeddings(EmbeddingsFunctionalNorm)
    checks.check_embeddings(EmbeddingsFunctionalNorm, seed=51, batch=3, length=9)


@pytest.mark.parametrize("cls", ADAMW_VARIANTS, ids=["standard", "decay_after", "efficient", "both", "old_after"])
def test_correct_adamw_variants_pass(in_assignment, cls):
    in_assignment("03_adamw")
    checks.check_adamw_first_step(cls)
    checks.check_adamw_first_step(cls, seed=61, lr=0.3, betas=(0.8, 0.99))
    checks.check_adamw_decay(cls)
    checks.check_adamw_decay(cls, seed=62, steps=8, lr=0.05, weight_decay=1.0)
    checks.check_adamw_trajectory(cls)
    checks.check_adamw_trajectory(cls, seed=63, steps=40, lr=0.01, betas=(0.85, 0.98), weight_decay=0.0)
    checks.check_adamw_trajectory(cls, seed=64, lr=0.2, eps=1e-6, weight_decay=0.3)
    checks.check_adamw_state(cls)
    checks.check_adamw_state(cls, seed=65)


def test_the_reference_adamw_keeps_state_per_parameter(in_assignment):
    in_assignment("03_adamw")
    checks.check_adamw_state(AdamW)
    checks.check_adamw_state(mistaken_adamw(""))


def test_correct_sentiment_variants_pass(in_assignment):
    in_assignment("04_sentiment")

    def mean_pool_loop(hidden, mask):
        return torch.stack([hidden[b, mask[b].bool()].mean(dim=0) for b in range(hidden.size(0))])

    def freeze_with_eval_too(model):
        model.encoder.requires_grad_(False)
        model.encoder.eval()

    def freeze_by_name(model):
        for name, p in model.named_parameters():
            p.requires_grad = not name.startswith("encoder.")

    checks.check_mean_pool(mean_pool_loop)
    for freeze in (freeze_with_eval_too, freeze_by_name):
        checks.check_freeze_encoder(freeze, SentimentClassifier)


# --- a named mistake only when it is the cause --------------------------------------------------------

def messages_of(check, wrong) -> str:
    with pytest.raises(CheckError) as err:
        check(wrong)
    return str(err.value)


def names_none_of(message: str, keys) -> bool:
    return not any(MISTAKES[key] in message for key in keys)


ATTENTION_MISTAKES = ("attention_no_scale", "attention_scale_dk", "softmax_wrong_axis", "mask_after_softmax",
                      "mask_wrong_sign", "mask_ignored")
ADAMW_MISTAKES = ("adamw_no_bias_correction", "adamw_l2", "adamw_decay_without_lr", "adamw_no_decay",
                  "adamw_shared_step")


def test_an_in_place_scale_is_not_called_a_missing_sqrt(in_assignment):
    in_assignment("01_attention")
    message = messages_of(checks.check_attention, attention_scale_in_place)
    assert MISTAKES["input_changed_in_place"] in message and "'query'" in message
    assert names_none_of(message, ATTENTION_MISTAKES)


def test_two_attention_mistakes_name_neither(in_assignment):
    in_assignment("01_attention")

    def no_scale_wrong_axis(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1)
        return torch.softmax(scores if mask is None else scores + mask, dim=-2) @ v

    def values_scaled(q, k, v, mask=None):  # not a listed mistake: the values are scaled, not the scores
        return mask_ignored(q, k, v / math.sqrt(q.size(-1)), mask)

    for wrong in (no_scale_wrong_axis, values_scaled):
        message = messages_of(checks.check_attention, wrong)
        assert names_none_of(message, ATTENTION_MISTAKES), message
        assert re.search(r"element \(\d+, \d+, \d+, \d+\) is -?[\d.e+-]+, the reference -?[\d.e+-]+; "
                         r"max abs difference", message), message


def test_a_step_counter_from_zero_gets_no_mask_hint(in_assignment):
    in_assignment("03_adamw")
    for check in (checks.check_adamw_first_step, checks.check_adamw_trajectory, checks.check_adamw_decay,
                  checks.check_adamw_state):
        message = messages_of(check, AdamWStepFromZero)
        assert "mask" not in message and "softmax" not in message, message
        assert "NaN or inf at step 1" in message and "1 - beta^0 = 0" in message, message
    nan_everywhere = type("NaNAdamW", (AdamW,), {"step": lambda self: [p.data.fill_(float("nan"))
                                                                       for g in self.param_groups
                                                                       for p in g["params"]]})
    message = messages_of(checks.check_adamw_trajectory, nan_everywhere)  # another cause: no named mistake
    assert names_none_of(message, ADAMW_MISTAKES) and "NaN or inf" in message


def test_two_adamw_mistakes_name_neither(in_assignment):
    in_assignment("03_adamw")

    class NoBiasCorrectionAndL2(MistakenAdamW):
        mistake = "adamw_l2"

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
                for p in group["params"]:
                    state = self.state[p]
                    if not state:
                        state.update(m=torch.zeros_like(p), v=torch.zeros_like(p))
                    g = p.grad + wd * p
                    state["m"] = b1 * state["m"] + (1 - b1) * g
                    state["v"] = b2 * state["v"] + (1 - b2) * g * g
                    p -= lr * state["m"] / (state["v"].sqrt() + eps)

    message = messages_of(checks.check_adamw_trajectory, NoBiasCorrectionAndL2)
    assert names_none_of(message, ADAMW_MISTAKES), message
    assert "differs from the reference from step 1 on" in message


def test_two_layer_mistakes_name_neither(in_assignment):
    in_assignment("02_bert")

    class PreNormWithoutMask(BertLayer):
        def forward(self, x, additive_mask):
            x = x + self.attention(self.attention_norm(x), None)
            return x + self.feed_forward(self.ffn_norm(x))

    message = messages_of(checks.check_bert_layer, PreNormWithoutMask)
    assert names_none_of(message, ("layer_pre_norm", "mask_ignored", "layer_no_residual", "layer_norm_shared")), message


def test_freeze_messages_name_eval_only_when_eval_was_used(in_assignment):
    in_assignment("04_sentiment")

    def freeze_layers_only(model):  # forgets the embeddings, never calls eval()
        for p in model.encoder.layers.parameters():
            p.requires_grad = False

    message = messages_of(lambda fn: checks.check_freeze_encoder(fn, SentimentClassifier), freeze_layers_only)
    assert "model.eval()" not in message and "'encoder.embeddings." in message, message
    message = messages_of(lambda fn: checks.check_freeze_encoder(fn, SentimentClassifier), freeze_with_eval)
    assert MISTAKES["frozen_still_training"] in message
    in_assignment("06_extensions")

    def freeze_nothing(model, k):
        pass

    message = messages_of(check_freeze(2), freeze_nothing)
    assert "model.eval()" not in message, message


def test_dropout_in_training_mode_is_checked_with_a_fixed_seed(in_assignment):
    in_assignment("02_bert")
    message = messages_of(checks.check_bert_layer, LayerDropoutAfterNorm)
    assert MISTAKES["dropout_wrong_place"] in message and "before its residual" in message
    checks.check_bert_model(BertModel, seed=9)


def test_a_train_step_is_verified_from_the_weights_it_leaves(in_assignment):
    in_assignment("04_sentiment")

    def two_steps_per_call(model, optimizer, input_ids, attention_mask, labels):
        loss = mistaken_train_step("")(model, optimizer, input_ids, attention_mask, labels)
        mistaken_train_step("")(model, optimizer, input_ids, attention_mask, labels)
        return loss

    message = messages_of(lambda fn: checks.check_train_step(fn, SentimentClassifier), two_steps_per_call)
    assert "after the first step" in message and names_none_of(
        message, ("train_step_no_backward", "train_step_no_step", "train_step_no_zero_grad"))
