"""AdamW (Loshchilov & Hutter, 2019), written out step by step.

For every parameter p with gradient g, at step t:
    p <- p - lr * weight_decay * p                 decoupled weight decay
    m <- beta1 * m + (1 - beta1) * g               first moment
    v <- beta2 * v + (1 - beta2) * g^2             second moment
    m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)   bias correction
    p <- p - lr * m_hat / (sqrt(v_hat) + eps)

Unlike Adam with L2 regularisation, the decay never passes through m and v,
so every weight shrinks by the same fraction whatever its gradient history.
"""
from __future__ import annotations

import torch
from torch.optim import Optimizer


class AdamW(Optimizer):
    """The optimizer of notebook 03, line for line; the same updates as torch.optim.AdamW."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        if lr < 0.0:
            raise ValueError(f"lr={lr} must be >= 0")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas={betas} must lie in [0, 1)")
        if eps < 0.0:
            raise ValueError(f"eps={eps} must be >= 0")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            eps, weight_decay = group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("AdamW does not support sparse gradients")
                state = self.state[p]
                if not state:  # each parameter keeps its own step count and moments
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v, g = state["step"], state["m"], state["v"], p.grad

                p.mul_(1.0 - lr * weight_decay)                  # decoupled weight decay
                m.mul_(beta1).add_(g, alpha=1.0 - beta1)         # m = b1 m + (1 - b1) g
                v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)  # v = b2 v + (1 - b2) g^2
                m_hat = m / (1.0 - beta1 ** t)                   # bias correction: m and v start at 0
                v_hat = v / (1.0 - beta2 ** t)
                p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)  # p -= lr * m_hat / (sqrt(v_hat) + eps)
        return loss
