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

import math

import torch
from torch.optim import Optimizer


class AdamW(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, bias_correction: bool = True):
        if lr < 0.0:
            raise ValueError(f"lr={lr} must be >= 0")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas={betas} must lie in [0, 1)")
        if eps < 0.0:
            raise ValueError(f"eps={eps} must be >= 0")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        bias_correction=bias_correction)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("AdamW does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)     # m
                    state["exp_avg_sq"] = torch.zeros_like(p)  # v
                state["step"] += 1
                t, m, v, g = state["step"], state["exp_avg"], state["exp_avg_sq"], p.grad

                p.mul_(1.0 - lr * group["weight_decay"])          # decoupled weight decay
                m.mul_(beta1).add_(g, alpha=1.0 - beta1)          # m = b1 m + (1 - b1) g
                v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)   # v = b2 v + (1 - b2) g^2

                if group["bias_correction"]:
                    step_size = lr / (1.0 - beta1 ** t)
                    denom = v.sqrt().div_(math.sqrt(1.0 - beta2 ** t)).add_(eps)
                else:
                    step_size = lr
                    denom = v.sqrt().add_(eps)
                p.addcdiv_(m, denom, value=-step_size)            # p -= lr * m_hat / (sqrt(v_hat) + eps)
        return loss
