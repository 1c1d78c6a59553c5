# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · AdamW
#
# BERT is fine-tuned with **AdamW**: Adam's per-parameter step sizes, plus weight decay that
# is *decoupled* from the gradient. In this notebook you write the optimizer's `step`, and
# tests check it against the reference over many steps, in float64, with a tolerance (1e-9)
# tight enough to catch any deviation from the algorithm and loose enough for rounding.

# %%
import math

import matplotlib.pyplot as plt
import torch
from torch.optim import Optimizer

from minbert_lib import checks

# %% [markdown]
# ## 1. From Adam to AdamW
#
# For a parameter $p$ with gradient $g_t$ at step $t = 1, 2, \ldots$, Adam keeps two running
# averages, of the gradient and of its square (element-wise):
#
# $$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2, \qquad m_0 = v_0 = 0$$
#
# and moves each weight by about the learning rate, in the direction of the average gradient,
# scaled down where the gradient is noisy:
#
# $$p_t = p_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}$$
#
# **Bias correction.** Because $m_0 = v_0 = 0$, the first averages are too small: if the
# gradient were constant, $m_t = (1 - \beta_1^t)\, g$. Dividing undoes that:
#
# $$\hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad \hat v_t = \frac{v_t}{1 - \beta_2^t}$$
#
# Without it, with $\beta_1 = 0.9$ and $\beta_2 = 0.999$, the first step is
# $\eta \cdot 0.1\, g / \sqrt{0.001\, g^2} \approx 3.2\,\eta$: three times too large.
#
# **Decoupled weight decay.** Weight decay pulls weights towards 0. Adding
# $\lambda p$ to the gradient (L2 regularisation) is the same thing for SGD, but not for
# Adam: the decay term then goes through $m$ and $v$ and gets divided by $\sqrt{\hat v}$, so
# weights with large gradients are barely decayed. AdamW (Loshchilov & Hutter, 2019) decays
# the weights directly, outside $m$ and $v$:
#
# $$p \leftarrow p - \eta\, \lambda\, p \qquad \text{(before the Adam update)}$$
#
# so every weight shrinks by the same fraction $\eta \lambda$ per step.
#
# ### Exercise 1: `AdamW.step`
#
# PyTorch's `Optimizer` keeps the parameters in `self.param_groups` (each group a dict with
# `"params"` and the hyperparameters) and a per-parameter dict `self.state[p]` for your
# $t$, $m$ and $v$. Update the parameters in place (`p.mul_`, `p.add_`, `p.addcdiv_`, or
# `p -= ...`) under `torch.no_grad()`, or out of place with `p.data = ...`, and skip
# parameters whose `p.grad` is `None`. Keep $t$ per parameter, in `self.state[p]`: a
# parameter that had no gradient on some steps has taken fewer steps than the optimizer.
#
# **Which forms pass.** The tests accept four forms of AdamW, each compared with its own
# reference trajectory:
#
# * the one above: decay first, then the Adam update. Decaying *after* the update but from
#   the weights *before* it, $p \leftarrow p - \eta \hat m / (\sqrt{\hat v} + \varepsilon) - \eta\lambda p_{\text{old}}$,
#   is the same arithmetic in another order: it differs by rounding only (about $10^{-16}$
#   per operation in float64), far inside the tolerance;
# * the CS224N handout's order, decay of the already-updated weights; it differs from the
#   above by $\eta^2 \lambda$ times the update per step (about $10^{-4}$ here), which is not
#   rounding, so it is compared with a reference of its own;
# * Kingma & Ba's "efficient" bias correction, $p \leftarrow p - \eta \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t} \cdot \frac{m}{\sqrt{v} + \hat\varepsilon}$,
#   which puts $\varepsilon$ on the uncorrected denominator: it differs from the above by an
#   $\varepsilon$-sized term ($\varepsilon$ against $\varepsilon \sqrt{1 - \beta_2^t}$), and
#   also gets its own reference;
# * both of the last two together.
#
# The tolerance, $10^{-9}$ plus $10^{-7}$ of the value, comes from an error budget: float64
# rounds at about $10^{-16}$, a step does about 20 operations, a run has at most 40 steps, and
# $m/\sqrt{v}$ can amplify differences about 30 times; every mistake the tests look for moves
# the weights by more than $10^{-4}$.

# %% nbgrader="solution" grade_id="adamw"
class AdamW(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            eps, weight_decay = group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                ### BEGIN SOLUTION
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v, g = state["step"], state["m"], state["v"], p.grad

                p.mul_(1.0 - lr * weight_decay)                  # decoupled weight decay
                m.mul_(beta1).add_(g, alpha=1.0 - beta1)         # m = b1 m + (1 - b1) g
                v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)  # v = b2 v + (1 - b2) g^2
                m_hat = m / (1.0 - beta1 ** t)
                v_hat = v / (1.0 - beta2 ** t)
                p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)
                ### END SOLUTION


# %% [markdown]
# The first test runs one step: with bias correction, each weight moves by about `lr`.

# %% nbgrader="tests" grade_id="test_first_step" points=1
checks.check_adamw_first_step(AdamW)
### BEGIN HIDDEN TESTS
checks.check_adamw_first_step(AdamW, seed=61, lr=0.3, betas=(0.8, 0.99))
### END HIDDEN TESTS
print("first step (bias correction): OK")

# %% [markdown]
# The second test tells decoupled decay from L2: every gradient is zero, so only the decay
# moves the weights, and AdamW must give exactly $p_t = p_0\, (1 - \eta \lambda)^t$. (With
# L2, the decay would go through $m / \sqrt{v}$ and move each weight by about $\eta$ per
# step, whatever its size.)

# %% nbgrader="tests" grade_id="test_decoupled_decay" points=2
checks.check_adamw_decay(AdamW)
### BEGIN HIDDEN TESTS
checks.check_adamw_decay(AdamW, seed=62, steps=8, lr=0.05, weight_decay=1.0)
### END HIDDEN TESTS
print("decoupled weight decay: OK")

# %% [markdown]
# The third test follows a linear regression for 25 steps and compares the whole trajectory
# of both parameters with the reference's, to a tolerance of 1e-9. The hidden tests also give
# an optimizer two parameter groups (their own learning rates and decays) and gradients that
# are `None` for some parameters on some steps: each parameter's state must follow its own
# steps.

# %% nbgrader="tests" grade_id="test_trajectory" points=2
checks.check_adamw_trajectory(AdamW)
### BEGIN HIDDEN TESTS
checks.check_adamw_trajectory(AdamW, seed=63, steps=40, lr=0.01, betas=(0.85, 0.98), weight_decay=0.0)
checks.check_adamw_trajectory(AdamW, seed=64, lr=0.2, eps=1e-6, weight_decay=0.3)
checks.check_adamw_state(AdamW)
checks.check_adamw_state(AdamW, seed=65)
### END HIDDEN TESTS
print("25-step trajectory: OK")

# %% [markdown]
# ## 2. Decay, seen on a picture
#
# `torch.optim.Adam(weight_decay=...)` is Adam with **L2**; your `AdamW` decays the weights
# directly. Below, two weights, 1.0 and 0.1, get a zero gradient from the loss, so only the
# decay moves them ($\eta = 0.01$, $\lambda = 1$).

# %%
def decay_only(optimizer_cls, start=(1.0, 0.1), steps=150):
    """Weights whose loss gradient is zero: only weight decay moves them. Returns (steps + 1, n)."""
    p = torch.tensor(start, requires_grad=True)
    optimizer = optimizer_cls([p], lr=0.01, weight_decay=1.0)
    history = [p.detach().clone()]
    for _ in range(steps):
        p.grad = torch.zeros_like(p)
        optimizer.step()
        history.append(p.detach().clone())
    return torch.stack(history)  # (steps + 1, 2)


fig, ax = plt.subplots(figsize=(7, 4))
for optimizer_cls, label, style in [(AdamW, "your AdamW (decoupled)", "-"),
                                    (torch.optim.Adam, "Adam + L2 (torch.optim.Adam)", "--")]:
    trajectory = decay_only(optimizer_cls)
    for i, start in enumerate((1.0, 0.1)):
        ax.plot(trajectory[:, i], style, label=f"{label}, start {start}")
ax.set_xlabel("step")
ax.set_ylabel("weight")
ax.set_title("Weight decay alone, $\\eta = 0.01$, $\\lambda = 1$")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# **Question 1** (written, 2 points). In the plot, how does each optimizer shrink the weight
# that starts at 1.0 and the one that starts at 0.1? Which one shrinks weights by a fixed
# fraction, and why does the other behave as it does? What does that mean, in a real model,
# for weights with large gradients?

# %% [markdown] nbgrader="written" grade_id="l2_vs_decoupled" points=2
# *Model answer.* AdamW shrinks both by the same fraction, $1 - \eta\lambda$ per step: two
# exponential curves. With Adam + L2, the decay $\lambda p$ is the whole gradient and Adam
# divides it by $\sqrt{\hat v} \approx \lambda |p|$, so each step moves the weight by about
# $\eta$ whatever its size: the weight at 1.0 first falls almost linearly, and the weight at
# 0.1 overshoots past 0 within about fifteen steps and oscillates around it. In a real model the decay term is divided by $\sqrt{\hat v}$
# of the whole gradient, so weights with large gradients are barely decayed: regularisation
# depends on the gradient history instead of on the weight's size. (Marking: 1 point for the
# two shapes, 1 point for the division by $\sqrt{\hat v}$ and its consequence.)

# %% [markdown]
# **Question 2** (written, 1 point). Fine-tuning BERT often uses a learning-rate warm-up.
# Bias correction already fixes the first steps' size; what else could make the first steps
# of fine-tuning harmful, that a warm-up helps with?

# %% [markdown] nbgrader="written" grade_id="warmup" points=1
# *Model answer.* Early on, $\hat v$ is estimated from only a few gradients, so the step
# sizes $1/\sqrt{\hat v}$ are noisy and can be large for weights that happened to get small
# gradients; and the freshly initialised task head sends large, poorly aimed gradients into
# the pretrained encoder. A small learning rate at first limits how far these first noisy
# steps can move the pretrained weights.
