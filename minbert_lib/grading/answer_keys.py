"""The answer key of every exercise: the reference implementation a student must not use.

Keyed by assignment, then by the grade_id of the exercise's solution cell. While a test of
an exercise runs, the runner makes these raise (see `runner.poison`), wherever `minbert_lib`
exports them, so a definition that is, subclasses, wraps or calls one fails that exercise.
A name that does not resolve (the reference moved) is skipped; `tests/test_grading.py`
checks that every name here resolves.
"""
from __future__ import annotations

ANSWER_KEYS: dict[str, dict[str, list[str]]] = {
    "01_attention": {
        "padding_mask": ["minbert_lib.attention.padding_mask_to_additive"],
        "attention": ["minbert_lib.attention.attention_weights",
                      "minbert_lib.attention.scaled_dot_product_attention"],
        "heads": ["minbert_lib.attention.split_heads", "minbert_lib.attention.merge_heads"],
        "self_attention": ["minbert_lib.attention.MultiHeadSelfAttention"],
    },
    "02_bert": {
        "embeddings": ["minbert_lib.model.BertEmbeddings"],
        "feed_forward": ["minbert_lib.model.FeedForward"],
        "bert_layer": ["minbert_lib.model.BertLayer"],
        "bert_model": ["minbert_lib.model.BertModel"],
        "weight_names": ["minbert_lib.weights.kit_to_hf_name"],
    },
    "03_adamw": {
        "adamw": ["minbert_lib.optim.AdamW"],
    },
    "04_sentiment": {
        "mean_pool": ["minbert_lib.model.mean_pool"],
        "classifier": ["minbert_lib.multitask.SentimentClassifier"],
    },
    "05_multitask": {
        "heads": ["minbert_lib.multitask.MultitaskHeads"],
        "task_loss": ["minbert_lib.tasks.task_loss", "minbert_lib.losses.sentiment_loss",
                      "minbert_lib.losses.paraphrase_loss", "minbert_lib.losses.similarity_loss"],
        "schedules": ["minbert_lib.schedules.baseline_epoch", "minbert_lib.schedules.tm1_epoch",
                      "minbert_lib.schedules.tm2_epoch"],
        "metrics": ["minbert_lib.evaluate.pearson", "minbert_lib.evaluate.confusion_matrix"],
    },
    "06_extensions": {
        "cosine_heads": ["minbert_lib.multitask.cos_similarity_score",
                         "minbert_lib.multitask.cos_paraphrase_probability"],
        "freezing": ["minbert_lib.multitask.freeze_all_but_last"],
        "mnr": ["minbert_lib.losses.multiple_negatives_ranking_loss"],
        "reweighting": ["minbert_lib.losses.dataset_share_weights"],
    },
}


def answer_keys(assignment: str) -> dict[str, list[str]]:
    """grade_id -> dotted names of the reference implementations of that exercise."""
    return ANSWER_KEYS.get(assignment, {})
