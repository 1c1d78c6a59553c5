# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · The BERT encoder
#
# BERT turns a sentence into one vector per token:
#
# ```
# token ids (B, T) -> embeddings (B, T, H) -> N x BertLayer (B, T, H) -> last hidden states
#                                                              [CLS] -> pooler -> (B, H)
# ```
#
# In this notebook you write every piece around the attention of notebook 01: the
# embeddings, the feed-forward network, the add & norm step, a whole `BertLayer` and the
# `BertModel`. They are tested on a tiny random configuration first (hidden size 32, two
# layers); then you load the pretrained all-MiniLM-L6-v2 weights into *your* model and check
# that it computes the same hidden states as the reference.
#
# Multi-head self-attention comes from `minbert_lib`, so this notebook stands alone even if
# notebook 01 is unfinished.

# %%
import torch
import torch.nn.functional as F
from torch import nn

from minbert_lib import checks
from minbert_lib.attention import MultiHeadSelfAttention, padding_mask_to_additive
from minbert_lib.config import BertConfig, model_config
from minbert_lib.model import BertOutput, BertPooler

config = model_config("tiny")
config

# %% [markdown]
# ## 1. Embeddings
#
# A token is an integer id. BERT gives each token the sum of three learned vectors: one for
# the word itself, one for its **position** $i$ in the sentence, and one for its **segment**
# (0 for the first sentence of a pair, 1 for the second), then normalises the sum:
#
# $$e_i = \mathrm{LayerNorm}\big(W_{\text{word}}[x_i] + P[i] + S[s_i]\big)$$
#
# Attention by itself ignores order: shuffle the tokens and every token gets the same
# weighted average as before. The position embeddings are the only place where BERT learns
# where a token stands.
#
# ### Exercise 1: `BertEmbeddings.forward`
#
# `input_ids` and `token_type_ids` have shape `(B, T)`. The positions are `0 .. T-1`
# (`torch.arange`). Apply dropout last. (`F.layer_norm` with `self.layer_norm`'s weight, bias
# and eps is the same as calling `self.layer_norm`.) The tests also run your module in training
# mode right after `torch.manual_seed`, as they run the reference, so dropout must be applied
# exactly where BERT applies it, once.

# %% nbgrader="solution" grade_id="embeddings"
class BertEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                            padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, input_ids, token_type_ids):
        """(B, T), (B, T) -> (B, T, H)."""
        ### BEGIN SOLUTION
        positions = torch.arange(input_ids.size(1), device=input_ids.device)  # (T,)
        x = (self.word_embeddings(input_ids)                  # (B, T, H)
             + self.position_embeddings(positions)[None]      # (1, T, H)
             + self.token_type_embeddings(token_type_ids))    # (B, T, H)
        return self.dropout(self.layer_norm(x))
        ### END SOLUTION


# %% nbgrader="tests" grade_id="test_embeddings" points=2
checks.check_embeddings(BertEmbeddings)
### BEGIN HIDDEN TESTS
checks.check_embeddings(BertEmbeddings, seed=51, batch=3, length=9)
checks.check_embeddings(BertEmbeddings, seed=52, batch=1, length=1)
### END HIDDEN TESTS
print("embeddings: OK")

# %% [markdown]
# ## 2. The feed-forward network
#
# After attention has mixed information *across* tokens, a two-layer network transforms each
# token *on its own*, widening it to the intermediate size `I` (usually `4 H`) and back:
#
# $$\mathrm{FFN}(x) = \mathrm{GELU}(x W_1 + b_1)\, W_2 + b_2, \qquad \mathrm{GELU}(x) = x\,\Phi(x)$$
#
# where $\Phi$ is the standard normal CDF. GELU is a smooth ReLU. It has two forms, and
# both are BERT's own: Google's original BERT code computes the tanh approximation,
# $0.5\,x\,(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715\,x^3)))$, `F.gelu(x, approximate="tanh")`;
# Hugging Face's BERT, and the MiniLM weights loaded in section 5, use the exact form,
# `F.gelu(x)` (or `0.5 * x * (1 + torch.erf(x / math.sqrt(2)))`). The tests accept either.
# They do not differ by rounding: up to 4.7e-4 per activation (float32 rounding is about
# 1e-7), and after MiniLM's six layers the hidden states move by up to 2.5e-3 (on section
# 5's sentences). So no tolerance could hold both: each test compares your code with the
# reference computed both ways.
#
# ### Exercise 2: `FeedForward.forward`

# %% nbgrader="solution" grade_id="feed_forward"
class FeedForward(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x):
        """(B, T, H) -> (B, T, H)."""
        ### BEGIN SOLUTION
        return self.down(F.gelu(self.up(x)))  # (B, T, H) -> (B, T, I) -> (B, T, H)
        ### END SOLUTION


# %% nbgrader="tests" grade_id="test_feed_forward" points=1
checks.check_feed_forward(FeedForward)
### BEGIN HIDDEN TESTS
checks.check_feed_forward(FeedForward, seed=53, batch=4, length=3)
### END HIDDEN TESTS
print("feed-forward: OK")

# %% [markdown]
# ## 3. Add & norm, and the BERT layer
#
# Each sub-layer $f$ (attention, then the feed-forward network) is wrapped in a residual
# connection followed by layer normalisation, the **add & norm** step:
#
# $$x \leftarrow \mathrm{LayerNorm}\big(x + \mathrm{Dropout}(f(x))\big), \qquad
# \mathrm{LayerNorm}(z) = \gamma \odot \frac{z - \mu}{\sqrt{\sigma^2 + \varepsilon}} + \beta$$
#
# with $\mu, \sigma^2$ the mean and variance of $z$ over the hidden axis. The residual lets
# the gradient flow straight through the stack; the normalisation keeps every token's vector
# at a steady scale. This is **post-norm**, as in the original BERT. Many later models use
# *pre-norm*, $x + f(\mathrm{LayerNorm}(x))$, which trains more stably when very deep; but
# BERT's weights were trained post-norm and only work that way.
#
# ### Exercise 3: `BertLayer.forward`
#
# Attention then feed-forward, each followed by add & norm (`attention_norm`, then
# `ffn_norm`), with `self.dropout` on each sub-layer's output, before the residual is added
# (checked in training mode with a fixed seed, like the embeddings).

# %% nbgrader="solution" grade_id="bert_layer"
class BertLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = MultiHeadSelfAttention(config.hidden_size, config.num_heads, config.attention_dropout)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x, additive_mask):
        """x: (B, T, H); additive_mask: (B, 1, 1, T) or None -> (B, T, H)."""
        ### BEGIN SOLUTION
        x = self.attention_norm(x + self.dropout(self.attention(x, additive_mask)))  # add & norm
        x = self.ffn_norm(x + self.dropout(self.feed_forward(x)))                    # add & norm
        return x
        ### END SOLUTION


# %% nbgrader="tests" grade_id="test_bert_layer" points=2
checks.check_bert_layer(BertLayer)
### BEGIN HIDDEN TESTS
checks.check_bert_layer(BertLayer, seed=54, batch=3, length=8)
checks.check_bert_layer(BertLayer, seed=55, batch=1, length=2)
### END HIDDEN TESTS
print("BERT layer: OK")

# %% [markdown]
# **Question 1** (written, 2 points). Suppose you swapped your post-norm `BertLayer` for a
# pre-norm one and loaded the pretrained BERT weights into it. Every weight fits, so loading
# works. Would the model still compute useful representations? Explain why or why not.

# %% [markdown] nbgrader="written" grade_id="post_norm" points=2
# *Model answer.* No. The weights were learned for post-norm: each layer expects its input
# to be the normalised output of the previous add & norm, and each LayerNorm's $\gamma,
# \beta$ were learned for the residual sum, not for the raw input. In a pre-norm layer the
# residual stream is never normalised, so its scale grows layer after layer and the learned
# projections see inputs unlike anything they were trained on; the hidden states come out
# very different. (Marking: 1 point for "no", 1 point for a reason about what the weights
# expect: normalised inputs, or $\gamma/\beta$ learned for the other place.)

# %% [markdown]
# ## 4. The model
#
# `BertModel` embeds the tokens, turns the `(B, T)` attention mask into an additive mask
# once, runs every layer, and applies the pooler, $\tanh(W h_{\text{[CLS]}} + b)$, to the
# first token's last hidden state. It returns a `BertOutput(last_hidden_state,
# pooler_output)`.
#
# ### Exercise 4: `BertModel.forward`
#
# `attention_mask` and `token_type_ids` may be `None`: then every token is real, and every
# token is in segment 0. The tests call `model(input_ids)` alone too.

# %% nbgrader="solution" grade_id="bert_model"
class BertModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_layers))
        self.pooler = BertPooler(config)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        """(B, T) ids, (B, T) mask, (B, T) segments -> BertOutput((B, T, H), (B, H))."""
        ### BEGIN SOLUTION
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        additive_mask = None
        if attention_mask is not None:
            additive_mask = padding_mask_to_additive(attention_mask, x.dtype)  # (B, 1, 1, T)
        for layer in self.layers:
            x = layer(x, additive_mask)
        return BertOutput(last_hidden_state=x, pooler_output=self.pooler(x))
        ### END SOLUTION


# %% nbgrader="tests" grade_id="test_bert_model" points=2
checks.check_bert_model(BertModel)
### BEGIN HIDDEN TESTS
checks.check_bert_model(BertModel, seed=56, batch=4, length=10)
checks.check_padding_invariance(BertModel, seed=57)
### END HIDDEN TESTS
print("BERT model: OK")

# %% [markdown]
# ## 5. Pretrained weights
#
# The weights of all-MiniLM-L6-v2 come in the Hugging Face format, whose parameter names
# follow the original TensorFlow code, e.g. `encoder.layer.0.attention.self.query.weight`.
# Our modules name the same tensors more simply: `layers.0.attention.query.weight`. Loading
# the weights is renaming them, then `load_state_dict`, which refuses any missing, unexpected
# or wrongly shaped tensor. The names below are the complete list for layer 0:

# %%
from minbert_lib.weights import IGNORED, read_state_dict, resolve_model_dir

folder = resolve_model_dir("minilm-l6")
hf_state = read_state_dict(folder)
for name, tensor in hf_state.items():
    if name.startswith(("embeddings.", "encoder.layer.0.", "pooler.")):
        print(f"{name:55s} {tuple(tensor.shape)}")

# %% [markdown]
# ### Exercise 5: rename the weights
#
# Write `hf_to_kit(name)`, which turns a Hugging Face name into the name of the same tensor in
# your `BertModel`: `print(list(BertModel(config).state_dict()))` shows the names to reach.
# Some hints: `LayerNorm` is `layer_norm` in the embeddings; each layer's attention output
# LayerNorm is `attention_norm`, its `intermediate.dense` is `feed_forward.up`, its
# `output.dense` is `feed_forward.down`, and its `output.LayerNorm` is `ffn_norm`. String
# methods (`replace`, `startswith`) or `re.sub` both work. `load_minilm` below uses your
# function.

# %% nbgrader="solution" grade_id="weight_names"
def hf_to_kit(name):
    """'encoder.layer.3.attention.self.query.weight' -> 'layers.3.attention.query.weight', etc."""
    ### BEGIN SOLUTION
    renames = [  # applied in this order; the more specific names first
        ("embeddings.LayerNorm.", "embeddings.layer_norm."),
        ("encoder.layer.", "layers."),
        (".attention.self.", ".attention."),
        (".attention.output.dense.", ".attention.output."),
        (".attention.output.LayerNorm.", ".attention_norm."),
        (".intermediate.dense.", ".feed_forward.up."),
        (".output.dense.", ".feed_forward.down."),
        (".output.LayerNorm.", ".ffn_norm."),
    ]
    for old, new in renames:
        name = name.replace(old, new)
    return name
    ### END SOLUTION


def load_minilm():
    """Your BertModel holding all-MiniLM-L6-v2's weights, in evaluation mode."""
    model = BertModel(BertConfig.from_json_file(folder / "config.json"))
    state = {hf_to_kit(name): tensor for name, tensor in hf_state.items() if not IGNORED.search(name)}
    model.load_state_dict(state)  # strict: every weight must find its place
    return model.eval()


# %% nbgrader="tests" grade_id="test_pretrained" points=3
checks.check_weight_names(hf_to_kit)
checks.check_pretrained(load_minilm)
### BEGIN HIDDEN TESTS
checks.check_pretrained(load_minilm, sentences=["Is this a paraphrase?", "Two sentences, one pair.", "x"])
### END HIDDEN TESTS
print("pretrained hidden states match the reference: OK")

# %% [markdown]
# Your model now is all-MiniLM-L6-v2. A sentence-transformer embeds a sentence as the mean of
# its tokens' last hidden states; similar sentences get similar embeddings:

# %%
from minbert_lib import Tokenizer
from minbert_lib.model import mean_pool

pretrained = load_minilm()
tokenizer = Tokenizer.from_pretrained("minilm-l6")
sentences = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell."]
batch = tokenizer(sentences)
with torch.no_grad():
    hidden = pretrained(**batch).last_hidden_state                          # (B, T, H)
embeddings = F.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)  # (B, H)
print("cosine similarities:\n", (embeddings @ embeddings.T).numpy().round(3))

# %% [markdown]
# **Question 2** (written, 2 points). Without position embeddings, what would BERT compute
# for the sentence *"dog bites man"* compared with *"man bites dog"*? Use what you know
# about attention to explain.

# %% [markdown] nbgrader="written" grade_id="positions" points=2
# *Model answer.* Exactly the same hidden state for each word, only in another order, and
# the same mean-pooled sentence embedding: self-attention is permutation-equivariant (each
# token's output is a weighted average over a *set* of keys and values, and the
# feed-forward network works token by token), so without position information the two
# sentences are the same bag of words. (Marking: 1 point for "same vectors, permuted", 1 point
# for the reason.)
