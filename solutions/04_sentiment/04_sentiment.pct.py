# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Sentiment classification
#
# A pretrained BERT turns a sentence into vectors; a small **head** on top turns them into
# an answer. In this notebook you build a five-class sentiment classifier for the Stanford
# Sentiment Treebank (SST-5) on the pretrained all-MiniLM-L6-v2 encoder:
#
# ```
# sentence -> tokens (B, T) -> BERT -> hidden states (B, T, H) -> mean pool (B, H)
#          -> dropout -> linear (B, 5) logits -> cross-entropy with the gold class
# ```
#
# You write the pooling, the classifier, one training step and the freezing of the encoder,
# then compare two ways of training: **frozen** (only the head learns) and **fine-tuned**
# (every weight learns).
#
# **Training budgets.** Training BERT is slow on a laptop CPU, so the training cells read
# `training_budget()`: `"full"` by default (about two minutes of training on two cores),
# `"quick"` when you set the environment variable `MINBERT_QUICK=1` before starting Jupyter
# (about a thousand sentences, under a minute; results that already mean something), and `"grading"` while
# nbgrader grades the notebook (just enough for the tests, so that a submission grades in
# seconds; `"preview"`, a few steps, where the autograder shows your outputs and grades
# outside the notebook). The graded training checks only ask for what the shortest run must reach: a
# batch learned by heart, an accuracy above always guessing the most frequent class.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
import torch.nn.functional as F
from torch import nn

from minbert_lib import BertModel, Tokenizer, checks
from minbert_lib.data import limited, load_split, resolve_data_dir
from minbert_lib.evaluate import confusion_matrix, macro_f1
from minbert_lib.notebook import autocast, device, training_budget
from minbert_lib.plots import SST_LABELS

BUDGET = training_budget()  # "grading", "quick" or "full"
DEVICE = device()  # a GPU when there is one, else the CPU
torch.manual_seed(0)
print(f"training budget: {BUDGET}; device: {DEVICE}; data folder: {resolve_data_dir()}")

# %% [markdown]
# ## 1. The data
#
# Each SST example is a movie-review sentence with a label from 0 (very negative) to 4 (very
# positive). The data files are found through the library (`MINBERT_DATA_DIR`, or the kit's
# `data/` folder after `minbert data fetch`).

# %%
sst_train = load_split("sst", "train")
sst_dev = load_split("sst", "dev")
print(f"{len(sst_train)} training and {len(sst_dev)} dev sentences")
for example in sst_train[:4]:
    print(f"  {example.label}  {example.text}")

dev_counts = np.bincount([e.label for e in sst_dev], minlength=5)
majority_floor = dev_counts.max() / dev_counts.sum()
fig, ax = plt.subplots(figsize=(6, 3))
sns.barplot(x=SST_LABELS, y=dev_counts, ax=ax, color="tab:blue")
ax.set(title="SST dev labels", ylabel="sentences")
plt.tight_layout()
plt.show()
print(f"always answering the most frequent class gives a dev accuracy of {majority_floor:.3f}: "
      "the floor any classifier must beat")

# %% [markdown]
# ## 2. One vector per sentence: mean pooling
#
# BERT gives one hidden vector $h_t \in \mathbb{R}^H$ per token. A classifier needs one vector
# per sentence. BERT's original recipe takes the `[CLS]` token's vector (through the
# *pooler*); all-MiniLM-L6-v2 was trained to embed sentences by the **mean** of its tokens'
# vectors, so that is what we use. Padding tokens must not count: with the attention mask
# $m_t \in \{0, 1\}$,
#
# $$\bar h = \frac{\sum_{t=1}^{T} m_t\, h_t}{\sum_{t=1}^{T} m_t}$$
#
# ### Exercise 1: `mean_pool`

# %% nbgrader="solution" grade_id="mean_pool"
def mean_pool(hidden, attention_mask):
    """(B, T, H) hidden states, (B, T) mask of 1 = real token -> (B, H) mean over real tokens."""
    ### BEGIN SOLUTION
    mask = attention_mask[..., None].to(hidden.dtype)      # (B, T, 1)
    total = (hidden * mask).sum(dim=1)                     # (B, H): padding contributes 0
    return total / mask.sum(dim=1).clamp(min=1.0)          # divide by each sentence's length
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_mean_pool" points=1
checks.check_mean_pool(mean_pool)
### BEGIN HIDDEN TESTS
checks.check_mean_pool(mean_pool, seed=41, batch=5, length=9, hidden_size=4)
checks.check_mean_pool(mean_pool, seed=42, batch=1, length=3, hidden_size=16)
### END HIDDEN TESTS
print("mean pooling: OK")

# %% [markdown]
# ## 3. The classifier
#
# On top of the sentence vector, the head is a dropout layer and one linear map to the five
# classes. It returns **logits** $z \in \mathbb{R}^5$, not probabilities: the loss,
# `F.cross_entropy(z, y)` $= -\log \mathrm{softmax}(z)_y$, applies the softmax itself, in a
# numerically stable way. (Dropout zeroes each entry with probability $p$ during training and
# scales the rest by $1/(1-p)$; in `eval()` mode it does nothing.)
#
# ### Exercise 2: `SentimentClassifier.forward`
#
# Keep the names of `__init__`; the tests load weights into them.

# %% nbgrader="solution" grade_id="classifier"
class SentimentClassifier(nn.Module):
    def __init__(self, encoder, dropout=0.3):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, 5)

    def forward(self, input_ids, attention_mask):
        """(B, T), (B, T) -> (B, 5) logits."""
        ### BEGIN SOLUTION
        hidden = self.encoder(input_ids, attention_mask).last_hidden_state  # (B, T, H)
        pooled = mean_pool(hidden, attention_mask)                          # (B, H)
        return self.classifier(self.dropout(pooled))                        # (B, 5)
        ### END SOLUTION


# %% nbgrader="tests" grade_id="test_classifier" points=2
checks.check_sentiment_classifier(SentimentClassifier)
### BEGIN HIDDEN TESTS
checks.check_sentiment_classifier(SentimentClassifier, seed=43, batch=2, length=10)
checks.check_sentiment_classifier(SentimentClassifier, seed=44, batch=6, length=3)
### END HIDDEN TESTS
print("sentiment classifier: OK")

# %% [markdown]
# ## 4. One training step, and the overfit-a-batch test
#
# A training step is always the same five lines: clear the old gradients, compute the loss,
# backpropagate, update, report. Return the loss as a Python number (`loss.item()`), so that
# the caller does not keep the whole computation graph alive.
#
# ### Exercise 3: `train_step`

# %% nbgrader="solution" grade_id="train_step"
def train_step(model, optimizer, input_ids, attention_mask, labels):
    """One optimisation step on one batch; returns the batch's loss (before the update) as a float."""
    model.train()  # dropout on
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    logits = model(input_ids, attention_mask)  # (B, 5)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% [markdown]
# Before training on thousands of sentences, check that the model can learn **one batch by
# heart**. If a model cannot drive the loss of eight examples to almost zero, something in
# the loop is broken (no `backward`, no `step`, gradients piling up, a softmax too many),
# and no amount of data will help. The test runs your `train_step` 40 times on one batch of
# a tiny random BERT and watches what it does.

# %% nbgrader="tests" grade_id="test_train_step" points=3
checks.check_train_step(train_step, SentimentClassifier)
### BEGIN HIDDEN TESTS
checks.check_train_step(train_step, SentimentClassifier, seed=45)
checks.check_train_step(train_step, SentimentClassifier, seed=46, steps=60, lr=1e-3)
### END HIDDEN TESTS
print("train_step learns a batch by heart: OK")

# %% [markdown]
# The same test on the real model: eight SST sentences, a few steps of fine-tuning. Expect
# the loss to start near $\ln 5 \approx 1.61$ (the untrained head guesses uniformly) and to
# fall at almost every step (dropout makes it wobble a little).

# %%
encoder = BertModel.from_pretrained("minilm-l6")
tokenizer = Tokenizer.from_pretrained("minilm-l6")
MAX_LENGTH = 64  # tokens; longer sentences are cut (few SST sentences are)


def encode(examples):
    """Token ids, attention mask (each (B, T)) and labels (B,) of a list of examples, on DEVICE."""
    batch = tokenizer([e.text for e in examples], max_length=MAX_LENGTH)
    labels = torch.tensor([e.label for e in examples])
    return batch["input_ids"].to(DEVICE), batch["attention_mask"].to(DEVICE), labels.to(DEVICE)


# %%
OVERFIT_STEPS = {"preview": 1, "grading": 3, "quick": 8, "full": 15}[BUDGET]
overfit_model = SentimentClassifier(encoder).to(DEVICE)
overfit_optimizer = torch.optim.AdamW(overfit_model.parameters(), lr=5e-4)  # large, to learn the batch fast
one_batch = encode(sst_train[:8])
with autocast(DEVICE):
    overfit_losses = [train_step(overfit_model, overfit_optimizer, *one_batch) for _ in range(OVERFIT_STEPS)]
print("loss on one batch:", " ".join(f"{loss:.2f}" for loss in overfit_losses))

# %% [markdown]
# ## 5. Freezing the encoder
#
# With 22 million pretrained weights and a few thousand labelled sentences, one option is to
# keep the encoder as it is and train only the head (1,925 weights): **freezing**. In
# PyTorch a parameter is frozen when `requires_grad` is `False`: backpropagation then
# computes no gradient for it, and the optimizer skips it. (`model.eval()` does *not* freeze
# anything: it only switches dropout off.)
#
# ### Exercise 4: `freeze_encoder`

# %% nbgrader="solution" grade_id="freeze"
def freeze_encoder(model):
    """Freeze every encoder parameter of a SentimentClassifier; the head keeps training."""
    ### BEGIN SOLUTION
    for param in model.encoder.parameters():
        param.requires_grad = False
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_freeze" points=2
checks.check_freeze_encoder(freeze_encoder, SentimentClassifier)
### BEGIN HIDDEN TESTS
checks.check_freeze_encoder(freeze_encoder, SentimentClassifier, seed=47)
### END HIDDEN TESTS
print("freezing: OK")

# %% [markdown]
# ## 6. Frozen or fine-tuned?
#
# Both runs below start from the same pretrained encoder and see the same training sentences.
#
# * **Frozen.** The encoder never changes, so each sentence's vector is the same in every
#   epoch: we compute the vectors once and train the head on them, which makes many epochs
#   cheap.
# * **Fine-tuned.** Every weight learns, with `train_step`. One pass over the data costs a
#   full forward and backward pass through BERT per batch.
#
# Models and batches live on `DEVICE`: a GPU when the machine has one (CUDA, or Apple's MPS),
# else the CPU (set `MINBERT_DEVICE=cpu` before starting Jupyter to choose). `autocast(DEVICE)`
# runs the matrix products in bfloat16 where the device supports it (recent GPUs, and CPUs
# with AMX or AVX-512 BF16: two to four times faster); elsewhere it does nothing.

# %%
SIZES = {  # training sentences, dev sentences scored (None: all 1,101), batches of fine-tuning
    "preview": (64, 64, 2),
    "grading": (600, 300, 16),
    "quick": (1200, 400, 100),  # 64 steps ended 0.048 above the floor of its 400 dev sentences; 100: 0.080
    "full": (3000, None, 200),
}
TRAIN_SIZE, DEV_SIZE, FINE_TUNE_STEPS = SIZES[BUDGET]
EVAL_POINTS = 8 if BUDGET in ("quick", "full") else 1  # dev scores during fine-tuning: the learning curve
BATCH_SIZE = 16
train_examples = limited(sst_train, TRAIN_SIZE, seed=0)
dev_examples = limited(sst_dev, DEV_SIZE, seed=0)
dev_gold = torch.tensor([e.label for e in dev_examples])
dev_floor = torch.bincount(dev_gold).max().item() / len(dev_gold)  # majority class of these dev sentences


@torch.no_grad()
def in_batches(fn, examples, batch_size=64):
    """fn(input_ids, attention_mask) on the examples, results in the examples' order. Each batch
    holds sentences of similar length, so that little compute goes into padding."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text))
    results = []
    for start in range(0, len(order), batch_size):
        ids, mask, _ = encode([examples[i] for i in order[start:start + batch_size]])
        with autocast(DEVICE):
            results.append(fn(ids, mask).float())
    in_length_order = torch.cat(results)
    return in_length_order[torch.argsort(torch.tensor(order, device=DEVICE))]  # back to the examples' order


def embed_sentences(encoder, examples):
    """Mean-pooled sentence vectors (N, H) of a frozen encoder."""
    encoder.eval()
    return in_batches(lambda ids, mask: mean_pool(encoder(ids, mask).last_hidden_state, mask), examples)


def predict(model, examples):
    """Predicted classes (N,) of a SentimentClassifier, in eval mode, on the CPU."""
    model.eval()
    return in_batches(lambda ids, mask: model(ids, mask).argmax(dim=-1), examples).long().cpu()


# %% [markdown]
# **Frozen**: the head alone, 30 epochs over the cached vectors.

# %%
torch.manual_seed(0)
started = time.perf_counter()
frozen = SentimentClassifier(BertModel.from_pretrained("minilm-l6")).to(DEVICE)
freeze_encoder(frozen)
train_vectors = embed_sentences(frozen.encoder, train_examples)  # (N, H)
train_gold = torch.tensor([e.label for e in train_examples], device=DEVICE)
head = nn.Sequential(frozen.dropout, frozen.classifier)  # the same modules as in `frozen`
head_optimizer = torch.optim.AdamW(head.parameters(), lr=3e-3)
frozen_curve = []  # (epoch, mean training loss, dev accuracy)
dev_vectors = embed_sentences(frozen.encoder, dev_examples)
for epoch in range(1, 31):
    head.train()
    order = torch.randperm(len(train_vectors))
    losses = []
    for start in range(0, len(order), BATCH_SIZE):
        rows = order[start:start + BATCH_SIZE]
        head_optimizer.zero_grad()
        loss = F.cross_entropy(head(train_vectors[rows]), train_gold[rows])
        loss.backward()
        head_optimizer.step()
        losses.append(loss.item())
    head.eval()
    with torch.no_grad():
        accuracy = (head(dev_vectors).argmax(-1).cpu() == dev_gold).float().mean().item()
    frozen_curve.append((epoch, float(np.mean(losses)), accuracy))
with torch.no_grad():
    frozen_predictions = head(dev_vectors).argmax(dim=-1).cpu()  # head is in eval mode: as predict(frozen, ...)
frozen_seconds = time.perf_counter() - started
print(f"frozen: dev accuracy {frozen_curve[-1][2]:.3f} after {len(frozen_curve)} epochs of the head "
      f"({frozen_seconds:.0f} s in all, embedding included)")

# %% [markdown]
# **Fine-tuned**: every weight, `FINE_TUNE_STEPS` batches, with a dev score every few steps.
# It starts from the frozen run's trained head: with a random head, the first steps would
# send large, meaningless gradients into the pretrained encoder and damage its features
# ("linear probing, then fine-tuning": Kumar et al., 2022). Short runs are also much steadier
# this way. Step 0 of its curve is therefore the frozen model's accuracy.

# %%
torch.manual_seed(0)
fine_tuned = SentimentClassifier(BertModel.from_pretrained("minilm-l6")).to(DEVICE)
fine_tuned.classifier.load_state_dict(frozen.classifier.state_dict())  # start from the trained head
# 3e-5: inside the 2e-5 to 5e-5 that the BERT paper recommends for fine-tuning. At 1e-4, short
# runs here sometimes fell back towards the majority class in their first steps.
optimizer = torch.optim.AdamW(fine_tuned.parameters(), lr=3e-5)
fine_tune_losses, step_seconds = [], []  # per step
fine_tune_curve = [(0, frozen_curve[-1][2])]  # (step, dev accuracy)
EVAL_EVERY = max(1, FINE_TUNE_STEPS // EVAL_POINTS)
order = torch.randperm(len(train_examples)).tolist()
for step in range(1, FINE_TUNE_STEPS + 1):
    start = (step - 1) * BATCH_SIZE % len(order)
    batch = encode([train_examples[i] for i in order[start:start + BATCH_SIZE]])
    started = time.perf_counter()
    with autocast(DEVICE):
        fine_tune_losses.append(train_step(fine_tuned, optimizer, *batch))  # .item() waits for the device
    step_seconds.append(time.perf_counter() - started)
    if step % EVAL_EVERY == 0 or step == FINE_TUNE_STEPS:
        fine_tuned_predictions = predict(fine_tuned, dev_examples)
        fine_tune_curve.append((step, (fine_tuned_predictions == dev_gold).float().mean().item()))
print(f"fine-tuned: dev accuracy {fine_tune_curve[-1][1]:.3f} after {FINE_TUNE_STEPS} steps; "
      f"median {np.median(step_seconds):.2f} s per step (frozen: {frozen_seconds / len(frozen_curve):.2f} s "
      "per head epoch, embedding included)")

# %% [markdown]
# Both must beat the majority-class floor. (With the grading and quick budgets they see little
# data, so expect modest numbers; the hidden test scores the fine-tuned model on other dev
# sentences.)

# %% nbgrader="tests" grade_id="test_accuracy" points=2
checks.check_above_majority(frozen_predictions, dev_gold, what="frozen encoder, SST dev accuracy")
checks.check_above_majority(fine_tuned_predictions, dev_gold, what="fine-tuned, SST dev accuracy")
### BEGIN HIDDEN TESTS
other_dev = limited(sst_dev, 200, seed=1)
checks.check_above_majority(predict(fine_tuned, other_dev), [e.label for e in other_dev],
                            what="fine-tuned, SST accuracy on other dev sentences")
### END HIDDEN TESTS
print("both beat the majority class: OK")

# %% [markdown]
# ## 7. Learning curves and confusion matrices

# %%
fig, axes = plt.subplots(1, 3, figsize=(17, 3.8))
axes[0].plot([e for e, _, _ in frozen_curve], [a for _, _, a in frozen_curve], "o-")
axes[0].set(xlabel="epoch of the head", ylabel="dev accuracy", title="frozen encoder: SST dev accuracy")
axes[1].plot([s for s, _ in fine_tune_curve], [a for _, a in fine_tune_curve], "s-", color="tab:orange")
axes[1].set(xlabel="fine-tuning step", ylabel="dev accuracy", title="fine-tuned: SST dev accuracy")
for ax in axes[:2]:
    ax.axhline(dev_floor, color="grey", ls="--", label="majority class")
    ax.legend(loc="lower right")
axes[2].plot(range(1, len(fine_tune_losses) + 1), fine_tune_losses, alpha=0.4, label="per batch")
window = max(1, len(fine_tune_losses) // 10)
smooth = np.convolve(fine_tune_losses, np.ones(window) / window, mode="valid")
axes[2].plot(range(window, len(fine_tune_losses) + 1), smooth, label=f"mean of {window}")
axes[2].set(xlabel="fine-tuning step", ylabel="cross-entropy", title="fine-tuned: training loss")
axes[2].legend()
plt.tight_layout()
plt.show()


# %%
def show_confusion(ax, gold, predicted, title):
    """Row-normalised confusion matrix: row = gold class, column = predicted class."""
    counts = confusion_matrix(gold, predicted, num_classes=5)
    shares = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    sns.heatmap(shares, annot=counts, fmt="d", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=ax,
                xticklabels=SST_LABELS, yticklabels=SST_LABELS)
    accuracy = (np.asarray(gold) == np.asarray(predicted)).mean()
    ax.set(title=f"{title}: accuracy {accuracy:.3f}, macro-F1 {macro_f1(gold, predicted):.3f}",
           xlabel="predicted", ylabel="gold")


fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
show_confusion(axes[0], dev_gold.numpy(), frozen_predictions.numpy(), "frozen")
show_confusion(axes[1], dev_gold.numpy(), fine_tuned_predictions.numpy(), "fine-tuned")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Question 1** (written, 2 points). Look at the two confusion matrices. Which classes does
# each model confuse most, and with which? Why are those confusions hard even for people, and
# what does that suggest about accuracy as the only measure for SST-5?

# %% [markdown] nbgrader="written" grade_id="confusions" points=2
# *Model answer.* Most errors sit next to the diagonal: very negative is taken for negative,
# very positive for positive, and the neutral class is confused with both sides (and often
# under-predicted: short runs tend to favour the two frequent classes 1 and 3). Neighbouring classes differ by degree, not by kind ("good" against "very good"), and
# annotators disagree on them too; an error of one step is much milder than calling a very
# positive sentence very negative, yet accuracy counts both the same. Macro-F1, a per-class
# view, or the mean distance between predicted and gold class tell more. (Marking: 1 point for
# the near-diagonal pattern and the neutral class, 1 point for why and the consequence for the metric.)

# %% [markdown]
# **Question 2** (written, 2 points). Compare the frozen and the fine-tuned model: their
# accuracy, their cost per training step, and the number of weights each one changes. When
# would you choose freezing?

# %% [markdown] nbgrader="written" grade_id="freeze_or_fine_tune" points=2
# *Model answer.* Given enough steps (the full budget), fine-tuning usually wins, because the
# encoder can adapt its features to sentiment, which its sentence-similarity training did not
# emphasise; with a few dozen steps (the quick budget) it adds little to the frozen head it
# starts from. Freezing changes about 2 thousand weights instead of 22 million, needs no
# backward pass through BERT (embed once, then each head epoch is nearly free: compare the
# printed seconds per fine-tuning step and per head epoch), and cannot destroy the
# pretrained knowledge: choose it with little data, little compute, or many tasks sharing one
# encoder. (Marking: 1 point for the comparison with numbers, 1 point for a sound reason to freeze.)

# %% [markdown]
# ## Summary
#
# You wrote mean pooling, a classification head, a training step that passes the
# overfit-a-batch test, and encoder freezing, and compared frozen and fine-tuned training.
# Notebook 05 puts three such heads on one shared encoder and trains them together.
