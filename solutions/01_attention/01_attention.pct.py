# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Attention
#
# BERT is a stack of identical layers, and the heart of each layer is **self-attention**:
# every token builds its new representation as a weighted average of all the tokens of the
# sentence, with weights it computes itself. In this notebook you write attention from
# scratch, in four steps:
#
# 1. the padding mask, so that padding tokens get no attention;
# 2. scaled dot-product attention, the formula of *Attention Is All You Need*;
# 3. splitting the hidden vector into heads and merging them back;
# 4. multi-head self-attention, the module BERT uses.
#
# Then you look at what a pretrained model attends to in a real sentence.
#
# Shapes are named throughout: `B` batch, `T` tokens, `H` hidden size, `nh` heads,
# `hs` head size (`H / nh`). Each test cell calls `minbert_lib.checks`, which compares your
# code with the reference on fixed tensors (stored next to this notebook in `sanity.pt`)
# and, when it can, tells you which common mistake you most likely made.

# %%
import math

import matplotlib.pyplot as plt
import seaborn as sns
import torch
from torch import nn

from minbert_lib import checks

# %% [markdown]
# ## 1. Scaled dot-product attention
#
# Each token $i$ has a **query** $q_i$, a **key** $k_j$ and a **value** $v_j$, vectors of
# size $d_k$. Token $i$ scores every token $j$ by the dot product $q_i \cdot k_j$, turns the
# scores into weights that sum to 1 with a softmax over $j$, and returns the weighted average
# of the values:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right) V$$
#
# With $Q, K, V$ of shape `(B, nh, T, hs)`, the scores $Q K^\top$ have shape `(B, nh, T, T)`:
# row $i$ holds query $i$'s scores over all keys, so the softmax runs over the **last** axis.
#
# **Why $\sqrt{d_k}$?** If the entries of $q$ and $k$ are independent with mean 0 and
# variance 1, then $q \cdot k = \sum_{m=1}^{d_k} q_m k_m$ has variance $d_k$. Large scores
# push softmax towards a one-hot vector, whose gradient is almost zero; dividing by
# $\sqrt{d_k}$ brings the variance back to 1.
#
# **The mask $M$.** Sentences in a batch have different lengths, so the short ones are
# padded. $M$ is 0 where the key is a real token and a very large negative number where it
# is padding: after the softmax, $e^{\text{very negative}} = 0$, and padding gets no weight.
# It is *added to the scores before the softmax*; the remaining weights then still sum to 1.
#
# ### Exercise 1: the additive padding mask
#
# The tokenizer gives an `attention_mask` of shape `(B, T)`: 1 for real tokens, 0 for
# padding. Turn it into an additive mask of shape `(B, 1, 1, T)`, which broadcasts over the
# heads and the queries: 0 for real tokens, `torch.finfo(dtype).min` (the most negative
# number of `dtype`) for padding. The mask must have the `dtype` it is asked for (the dtype of
# the scores it will be added to): the tests ask for float32, float64 and bfloat16.

# %% nbgrader="solution" grade_id="padding_mask"
def padding_mask_to_additive(attention_mask, dtype):
    """(B, T) of 1 = real, 0 = padding -> (B, 1, 1, T) of 0 = real, very negative = padding."""
    ### BEGIN SOLUTION
    keep = attention_mask[:, None, None, :].to(dtype)  # (B, 1, 1, T)
    return (1.0 - keep) * torch.finfo(dtype).min
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_padding_mask" points=1
checks.check_padding_mask(padding_mask_to_additive)
### BEGIN HIDDEN TESTS
checks.check_padding_mask(padding_mask_to_additive, seed=11, batch=5, length=9)
checks.check_padding_mask(padding_mask_to_additive, seed=12, batch=1, length=2)
### END HIDDEN TESTS
print("padding mask: OK")

# %% [markdown]
# ### Exercise 2: attention weights and attention
#
# Write `attention_weights`, the softmax part, then `scaled_dot_product_attention`, which
# applies the weights to the values. `additive_mask` may be `None` (no padding). Any correct
# way passes: `@` or `torch.einsum`, `torch.softmax` or your own, `masked_fill` with `-inf` or a
# large negative number instead of adding the mask, even loops. Do not change the input
# tensors in place (`query /= ...`): the caller still needs them, and the tests check it.

# %% nbgrader="solution" grade_id="attention"
def attention_weights(query, key, additive_mask=None):
    """softmax(Q K^T / sqrt(d_k) + mask): (B, nh, T, hs), (B, nh, T, hs) -> (B, nh, T, T)."""
    ### BEGIN SOLUTION
    d_k = query.size(-1)
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (B, nh, T, T)
    if additive_mask is not None:
        scores = scores + additive_mask
    return torch.softmax(scores, dim=-1)  # each query's weights over the keys sum to 1
    ### END SOLUTION


def scaled_dot_product_attention(query, key, value, additive_mask=None):
    """softmax(Q K^T / sqrt(d_k) + mask) V: -> (B, nh, T, hs)."""
    ### BEGIN SOLUTION
    return attention_weights(query, key, additive_mask) @ value  # (B, nh, T, T) @ (B, nh, T, hs)
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_attention_weights" points=2
checks.check_attention_weights(attention_weights)
### BEGIN HIDDEN TESTS
checks.check_attention_weights(attention_weights, seed=21, shape=(3, 2, 6, 8))
checks.check_attention_weights(attention_weights, seed=22, shape=(1, 1, 4, 16))
### END HIDDEN TESTS
print("attention weights: OK")

# %% nbgrader="tests" grade_id="test_attention" points=2
checks.check_attention(scaled_dot_product_attention)
### BEGIN HIDDEN TESTS
checks.check_attention(scaled_dot_product_attention, seed=23, shape=(2, 3, 7, 5))
checks.check_attention(scaled_dot_product_attention, seed=24, shape=(4, 1, 3, 2))
### END HIDDEN TESTS
print("scaled dot-product attention: OK")

# %% [markdown]
# **Question 1** (written, 2 points). Take $d_k = 64$ and scores without the $1/\sqrt{d_k}$
# factor. What happens to the attention weights, and to the gradients that reach the queries
# and keys, early in training? Answer in the cell below in two or three sentences; you may
# run a small experiment first.

# %% [markdown] nbgrader="written" grade_id="why_scale" points=2
# *Model answer.* Unscaled scores have a standard deviation of about $\sqrt{64} = 8$ instead
# of 1, so the softmax is nearly one-hot: one key takes almost all the weight. The softmax
# then saturates, its Jacobian is close to zero, and the queries and keys get tiny gradients,
# so learning is slow. (Marking: 1 point for "the variance grows with $d_k$", 1 point for
# "saturated softmax, vanishing gradients".)

# %% [markdown]
# ## 2. Heads
#
# One attention lets each token average the others in one way. **Multi-head** attention
# runs `nh` attentions side by side, each on its own `hs = H / nh` slice of the projected
# queries, keys and values, so different heads can look for different things (the next
# word, the verb's subject, the sentence's end...).
#
# Splitting reshapes `(B, T, H)` into `(B, T, nh, hs)`: the last axis is cut into `nh`
# consecutive slices of size `hs`. Then `transpose(1, 2)` moves the heads before the
# tokens, `(B, nh, T, hs)`, so that a batched matmul runs every head at once. Merging is the
# inverse: transpose back to `(B, T, nh, hs)`, then glue the heads back into `(B, T, H)`.
#
# Careful: reshaping `(B, T, H)` straight into `(B, nh, T, hs)` gives the right *shape* but
# the wrong *content*; it mixes tokens. A `transpose` leaves the tensor non-contiguous in
# memory, so use `.contiguous().view(...)` or `.reshape(...)` after it.
#
# ### Exercise 3: split and merge

# %% nbgrader="solution" grade_id="heads"
def split_heads(x, num_heads):
    """(B, T, H) -> (B, nh, T, hs)."""
    ### BEGIN SOLUTION
    B, T, H = x.shape
    return x.view(B, T, num_heads, H // num_heads).transpose(1, 2)
    ### END SOLUTION


def merge_heads(x):
    """(B, nh, T, hs) -> (B, T, H), the inverse of split_heads."""
    ### BEGIN SOLUTION
    B, nh, T, hs = x.shape
    return x.transpose(1, 2).contiguous().view(B, T, nh * hs)
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_heads" points=2
checks.check_split_heads(split_heads)
checks.check_merge_heads(merge_heads)
x = torch.randn(2, 5, 12)  # any tensor will do
assert torch.equal(merge_heads(split_heads(x, 3)), x), "merge_heads(split_heads(x)) must give x back"
### BEGIN HIDDEN TESTS
checks.check_split_heads(split_heads, seed=31, batch=3, length=7, num_heads=2, head_size=5)
checks.check_merge_heads(merge_heads, seed=32, batch=1, length=4, num_heads=6, head_size=2)
### END HIDDEN TESTS
print("split and merge heads: OK")

# %% [markdown]
# ## 3. Multi-head self-attention
#
# In self-attention the queries, keys and values all come from the same input $X$
# `(B, T, H)`, through three learned linear maps, and a fourth map mixes the heads' outputs:
#
# $$Q = X W_Q + b_Q, \quad K = X W_K + b_K, \quad V = X W_V + b_V$$
# $$\mathrm{MHSA}(X) = \mathrm{merge}\big(\mathrm{Attention}(\mathrm{split}(Q), \mathrm{split}(K), \mathrm{split}(V))\big)\, W_O + b_O$$
#
# ### Exercise 4: the module
#
# The `__init__` is given (keep its names: the tests and the pretrained weights rely on
# them). Write `forward` with your functions from above. Dropout on the weights is left out
# here; the library's version has it.

# %% nbgrader="solution" grade_id="self_attention"
class MultiHeadSelfAttention(nn.Module):
    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, hidden_size)

    def forward(self, x, additive_mask=None):
        """x: (B, T, H); additive_mask: (B, 1, 1, T) or None -> (B, T, H)."""
        ### BEGIN SOLUTION
        q = split_heads(self.query(x), self.num_heads)  # (B, nh, T, hs)
        k = split_heads(self.key(x), self.num_heads)    # (B, nh, T, hs)
        v = split_heads(self.value(x), self.num_heads)  # (B, nh, T, hs)
        context = scaled_dot_product_attention(q, k, v, additive_mask)  # (B, nh, T, hs)
        return self.output(merge_heads(context))  # (B, T, H)
        ### END SOLUTION


# %% nbgrader="tests" grade_id="test_self_attention" points=2
checks.check_self_attention(MultiHeadSelfAttention)
### BEGIN HIDDEN TESTS
checks.check_self_attention(MultiHeadSelfAttention, seed=41, hidden_size=24, num_heads=3, batch=3, length=6)
checks.check_self_attention(MultiHeadSelfAttention, seed=42, hidden_size=8, num_heads=8, batch=1, length=3)
### END HIDDEN TESTS
print("multi-head self-attention: OK")

# %% [markdown]
# ## 4. What does a pretrained model attend to?
#
# `minbert_lib` holds a BERT that reads the weights of all-MiniLM-L6-v2 (6 layers, 12 heads
# of size 32). Below, a forward hook catches the input of one layer's attention; your
# `split_heads` and `attention_weights` then recompute that layer's attention weights, and
# seaborn draws one head as a heatmap: row $i$ shows where token $i$ looks.

# %%
from minbert_lib import BertModel, Tokenizer

model = BertModel.from_pretrained("minilm-l6")
tokenizer = Tokenizer.from_pretrained("minilm-l6")
sentence = "The animal didn't cross the street because it was too tired."
batch = tokenizer([sentence])
tokens = ["[CLS]"] + tokenizer.tokenize(sentence) + ["[SEP]"]  # what the model reads

LAYER, HEAD = 2, 5
captured = {}
attention = model.layers[LAYER].attention
hook = attention.register_forward_hook(lambda module, inputs, output: captured.update(x=inputs[0]))
with torch.no_grad():
    model(**batch)
    hook.remove()
    q = split_heads(attention.query(captured["x"]), attention.num_heads)  # (1, nh, T, hs)
    k = split_heads(attention.key(captured["x"]), attention.num_heads)    # (1, nh, T, hs)
    weights = attention_weights(q, k)                                      # (1, nh, T, T)

fig, ax = plt.subplots(figsize=(7, 6))
sns.heatmap(weights[0, HEAD].numpy(), xticklabels=tokens, yticklabels=tokens,
            cmap="viridis", square=True, cbar_kws={"label": "attention weight"}, ax=ax)
ax.set_xlabel("key (attended to)")
ax.set_ylabel("query (attending)")
ax.set_title(f"all-MiniLM-L6-v2, layer {LAYER}, head {HEAD}")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Question 2** (written, 2 points). Change `LAYER` and `HEAD` and look at a few heads.
# Describe two patterns you see (for example: attending to the previous or next token, to
# `[CLS]` or `[SEP]`, or from *it* to the noun it refers to), naming the layer and head of each.

# %% [markdown] nbgrader="written" grade_id="heatmap" points=2
# *Model answer.* (Marking: 1 point per clearly described pattern with its layer and head.)
# Common patterns: a head attending to the previous or next token, a diagonal next to the
# main one; heads putting most of their weight on `[SEP]` or `[CLS]`, a "nothing to do"
# default; heads linking a pronoun such as *it* to its noun, or the pieces of one word to
# each other.

# %% [markdown]
# ## Summary
#
# You wrote the padding mask, scaled dot-product attention, head splitting and merging, and
# multi-head self-attention: everything `minbert_lib.attention` holds. The next notebook
# builds a whole BERT layer around this module and loads pretrained weights into it.
