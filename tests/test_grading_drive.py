"""The drive contract: every check reaches the student's code only through grading.drive, with a
module-level driver of minbert_lib, plain data in and plain data out.

Each reference passes every check here through a stand-in for the remote runner: a proxy that
is not callable, finds the driver again by module and qualified name, and sends the arguments
and the result through torch.save / torch.load(weights_only=True), which refuses anything but
plain data.
"""
import importlib
import io

import pytest
import torch
import torch.nn.functional as F

from minbert_lib import checks
from minbert_lib.attention import (MultiHeadSelfAttention, merge_heads, padding_mask_to_additive,
                                   scaled_dot_product_attention, split_heads)
from minbert_lib.multitask import MultitaskHeads, SentimentClassifier
from minbert_lib.losses import dataset_share_weights, multiple_negatives_ranking_loss
from minbert_lib.tasks import task_loss as reference_task_loss
from minbert_lib.model import BertEmbeddings, BertLayer, BertModel, FeedForward, mean_pool
from minbert_lib.multitask import freeze_all_but_last
from minbert_lib.optim import AdamW
from minbert_lib.schedules import SCHEDULES
from test_checks import freeze_encoder, in_assignment, mistaken_train_step, weights_of  # noqa: F401

DRIVERS_USED = set()


def through_the_wire(value):
    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


class Remote:
    """A definition that lives in another process: only drive() can use it."""

    def __init__(self, definition):
        self._definition = definition

    def __minbert_remote_drive__(self, driver, *args, **kwargs):
        module, name = driver.__module__, driver.__qualname__
        assert module.startswith("minbert_lib.") and "." not in name and "<" not in name, (module, name)
        found = getattr(importlib.import_module(module), name)
        assert found is driver
        DRIVERS_USED.add(f"{module}.{name}")
        args, kwargs = through_the_wire((list(args), kwargs))
        return through_the_wire(found(self._definition, *args, **kwargs))


def test_every_reference_passes_through_the_wire(in_assignment):
    R = Remote
    in_assignment("01_attention")
    checks.check_padding_mask(R(padding_mask_to_additive))
    checks.check_attention_weights(R(weights_of(scaled_dot_product_attention)))
    checks.check_attention(R(scaled_dot_product_attention))
    checks.check_split_heads(R(split_heads))
    checks.check_merge_heads(R(merge_heads))
    checks.check_self_attention(R(MultiHeadSelfAttention))
    in_assignment("02_bert")
    checks.check_embeddings(R(BertEmbeddings))
    checks.check_feed_forward(R(FeedForward))
    checks.check_bert_layer(R(BertLayer))
    checks.check_bert_model(R(BertModel))
    checks.check_padding_invariance(R(BertModel))
    from minbert_lib.weights import _rename
    checks.check_weight_names(R(lambda hf_name: _rename(hf_name, 0)))
    in_assignment("03_adamw")
    for check in (checks.check_adamw_first_step, checks.check_adamw_decay, checks.check_adamw_trajectory,
                  checks.check_adamw_state):
        check(R(AdamW))
    in_assignment("04_sentiment")
    checks.check_mean_pool(R(mean_pool))
    checks.check_sentiment_classifier(R(SentimentClassifier))
    checks.check_train_step(R(mistaken_train_step("")), SentimentClassifier)
    checks.check_freeze_encoder(R(freeze_encoder), SentimentClassifier)
    in_assignment("05_multitask")
    checks.check_multitask_heads(R(MultitaskHeads))
    checks.check_task_loss(R(reference_task_loss))
    for name, schedule in SCHEDULES.items():
        checks.check_schedule(name, R(schedule.epoch))
    checks.check_pearson(R(lambda x, y: torch.corrcoef(torch.stack([x, y]))[0, 1]))
    checks.check_confusion_matrix(R(lambda g, p, c: torch.bincount(g * c + p, minlength=c * c).view(c, c)))
    in_assignment("06_extensions")
    checks.check_cos_similarity(R(lambda u, v: 5 * F.relu(F.cosine_similarity(u, v, dim=-1))))
    checks.check_cos_paraphrase(R(lambda u, v: torch.sigmoid(F.cosine_similarity(u, v, dim=-1))))
    checks.check_mnr_loss(R(multiple_negatives_ranking_loss))
    checks.check_loss_weights(R(dataset_share_weights))
    checks.check_freeze_all_but_last(R(freeze_all_but_last), k=2)
    assert len(DRIVERS_USED) >= 9, DRIVERS_USED


def test_an_exception_in_student_code_comes_out_of_the_driver(in_assignment):
    in_assignment("01_attention")

    def broken(q, k, v, mask=None):
        raise ValueError("my own bug")

    with pytest.raises(ValueError, match="my own bug"):
        checks.check_attention(Remote(broken))


def test_checks_holds_no_reference_implementation():
    public = {name for name in vars(checks) if not name.startswith("__")}
    assert public == set(checks.__all__)
    assert all(name.startswith("check_") for name in public - {"CheckError", "MISTAKES"})
