"""Task losses (each task's in tasks.TASKS), the multiple-negatives ranking loss (MNR), and loss reweighting (RW).

Every head returns *logits* or raw values, never probabilities, so each loss
applies its own squashing:
    sentiment:  cross-entropy over 5 logits        (B, 5), labels (B,) in 0..4
    paraphrase: binary cross-entropy with logits   (B,),   labels (B,) in {0, 1}
    similarity: mean squared error                 (B,),   labels (B,) in [0, 5]
(CFIMDB's binary sentiment uses the sentiment loss over 2 logits.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sentiment_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels)


def paraphrase_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def similarity_loss(predictions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(predictions.float(), labels.float())


def multiple_negatives_ranking_loss(anchors: torch.Tensor, positives: torch.Tensor,
                                    scale: float = 20.0) -> torch.Tensor:
    """MNR loss: for anchor i, positive i is the right answer among all positives of the batch.

    anchors, positives: (B, H) sentence embeddings of B positive pairs. The other
    B - 1 positives act as negatives (in-batch negatives). The scores are
    scale * cos(anchor_i, positive_j), and the loss is cross-entropy with target j = i.
    """
    a = F.normalize(anchors.float(), dim=-1)     # (B, H)
    p = F.normalize(positives.float(), dim=-1)   # (B, H)
    scores = scale * a @ p.T                     # (B, B): row i scores anchor i against every positive
    targets = torch.arange(a.size(0), device=a.device)  # the diagonal holds the true pairs
    return F.cross_entropy(scores, targets)


def cosent_loss(predictions: torch.Tensor, labels: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """CoSENT: penalise every pair of examples whose predicted order contradicts the gold order.

    predictions (B,) similarity scores (e.g. cosines), labels (B,) gold scores.
    loss = log(1 + sum over (i, j) with label_i > label_j of exp(scale * (pred_j - pred_i))).
    Only the ranking matters, which is what Pearson and Spearman reward.
    """
    pred = predictions.float()
    diff = scale * (pred[None, :] - pred[:, None])                 # (B, B): diff[i, j] = s(pred_j - pred_i)
    wrong_order = labels[:, None] > labels[None, :]                # (B, B): pairs with label_i > label_j
    diff = diff.masked_fill(~wrong_order, float("-inf"))
    zero = torch.zeros(1, device=pred.device)
    return torch.logsumexp(torch.cat([zero, diff.flatten()]), dim=0)


def dataset_share_weights(sizes: dict[str, int]) -> dict[str, float]:
    """RW: weight each task's loss by its dataset's share of all training examples."""
    total = sum(sizes.values())
    return {task: size / total for task, size in sizes.items()}
