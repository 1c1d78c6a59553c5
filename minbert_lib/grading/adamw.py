"""Grading of 03_adamw: the AdamW step, against a functional reference of every accepted form.

Accepted forms (each compared with its own reference trajectory, see notebook 03):
- "standard": decay first, p <- p (1 - lr wd), then p <- p - lr m_hat / (sqrt(v_hat) + eps).
  Decaying after the Adam update but from the weights *before* it is the same computation in
  another order: it differs by rounding only.
- "decay_after": the CS224N handout's order, decay of the already-updated weights; it differs
  from "standard" by lr^2 wd times the update per step, so it gets its own reference.
- "efficient": Kingma & Ba's efficient bias correction, eps on the corrected denominator:
  p <- p - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps); it differs from "standard"
  by an eps-sized term (eps vs eps sqrt(1 - b2^t) in the denominator).
- "decay_after+efficient": both.
"""
from __future__ import annotations

import math
from functools import partial

import torch

from minbert_lib.grading import drive
from minbert_lib.grading.common import MISTAKES, CheckError, case, register, type_name

ASSIGNMENT = "03_adamw"

register({
    "adamw_no_bias_correction": "there is no bias correction: divide m by (1 - beta1^t) and v by "
                                "(1 - beta2^t), with t the step count starting at 1",
    "adamw_l2": "the weight decay was added to the gradient (Adam with L2 regularisation): AdamW decays "
                "the weights directly, p -= lr * weight_decay * p, outside m and v",
    "adamw_decay_without_lr": "the decay ignored the learning rate: decoupled decay is "
                              "p -= lr * weight_decay * p",
    "adamw_no_decay": "no weight decay was applied: shrink every parameter by lr * weight_decay * p each step",
    "adamw_shared_step": "the step count t is shared by all parameters: a parameter that had no gradient on "
                         "some steps has taken fewer steps, so keep t per parameter, in self.state[p]",
})

ADAMW_HYPER = {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}
ACCEPTED_FORMS = ("standard", "decay_after", "efficient", "decay_after+efficient")

# Error budget: the trajectories are float64 (rounding 1.1e-16 per operation), about 20
# operations per step and at most 40 steps, so equivalent codes differ by about 1e-13 after
# amplification by m / sqrt(v) (|m / sqrt(v)| <= 1 / sqrt(1 - beta2) ~ 32 here); 1e-9 absolute +
# 1e-7 relative leaves a factor 1e3 of margin, while every named mistake moves some weight by
# more than 1e-4 (lr * weight_decay * |p| per step at least).
ATOL, RTOL = 1e-9, 1e-7


# --- the functional reference ----------------------------------------------------------------

def reference_adamw(params: list[torch.Tensor], groups: list[dict], grad_fn, steps: int,
                    form: str = "standard", mistake: str = "") -> list[torch.Tensor]:
    """Every parameter's trajectory (steps + 1, *shape) under AdamW in one of its accepted forms,
    or with one named mistake. grad_fn(step, params) gives each parameter's gradient or None.
    `groups` are dicts of hyperparameters with "params": the indices of their parameters."""
    params = [p.detach().clone() for p in params]
    state = [{"t": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p)} for p in params]
    shared = {"t": 0}  # the step counter of the adamw_shared_step mistake
    history = [[p.clone()] for p in params]
    for step in range(steps):
        grads = grad_fn(step, params)
        shared_counted = False
        for group in groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for i in group["params"]:
                g, p, s = grads[i], params[i], state[i]
                if g is None:
                    continue
                if mistake == "adamw_shared_step":
                    if not shared_counted:
                        shared["t"] += 1
                        shared_counted = True
                    t = shared["t"]
                else:
                    s["t"] += 1
                    t = s["t"]
                if mistake == "adamw_l2":
                    g = g + wd * p
                decay = {"adamw_l2": 0.0, "adamw_no_decay": 0.0, "adamw_decay_without_lr": wd}.get(
                    mistake, lr * wd)
                if "decay_after" not in form:
                    p = p * (1.0 - decay)
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g * g
                if mistake == "adamw_no_bias_correction":
                    p = p - lr * s["m"] / (s["v"].sqrt() + eps)
                elif "efficient" in form:
                    step_size = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                    p = p - step_size * s["m"] / (s["v"].sqrt() + eps)
                else:
                    m_hat, v_hat = s["m"] / (1 - b1 ** t), s["v"] / (1 - b2 ** t)
                    p = p - lr * m_hat / (v_hat.sqrt() + eps)
                if "decay_after" in form:
                    p = p - decay * p
                params[i] = p
        for trajectory, p in zip(history, params):
            trajectory.append(p.clone())
    return [torch.stack(trajectory) for trajectory in history]


def regression_grads(inputs: torch.Tensor | None, targets: torch.Tensor | None):
    """grad_fn of the cases: the mean squared error of a linear model, or zero gradients."""
    def grad_fn(step, params):
        if inputs is None:
            return [torch.zeros_like(p) for p in params]
        weight, bias = (p.detach().clone().requires_grad_(True) for p in params)
        loss = ((inputs @ weight + bias - targets) ** 2).mean()
        return list(torch.autograd.grad(loss, [weight, bias]))
    return grad_fn


def given_grads(grads: list[list[torch.Tensor | None]]):
    return lambda step, params: grads[step]


# --- drivers -------------------------------------------------------------------------------------

def adamw_regression(cls, weight, bias, hyper: dict, steps: int, inputs=None, targets=None) -> list:
    """Driver: cls([weight, bias], **hyper) for `steps` steps on the mean squared error of the linear
    model inputs @ weight + bias (zero gradients without inputs); each parameter's trajectory."""
    params = [weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)]
    optimizer = cls(params, **hyper)
    history = [[p.detach().clone()] for p in params]
    for _ in range(steps):
        optimizer.zero_grad()
        if inputs is not None:
            loss = ((inputs @ params[0] + params[1] - targets) ** 2).mean()
            loss.backward()
        else:
            for p in params:
                p.grad = torch.zeros_like(p)
        optimizer.step()
        for trajectory, p in zip(history, params):
            trajectory.append(p.detach().clone())
    return [torch.stack(trajectory) for trajectory in history]


def adamw_given_gradients(cls, params: list, groups: list[dict], grads: list[list]) -> list:
    """Driver: cls over parameter groups (dicts of hyperparameters with "params": indices into
    `params`), stepping with the given gradients (None: the parameter has no gradient that step);
    each parameter's trajectory."""
    tensors = [p.clone().requires_grad_(True) for p in params]
    optimizer = cls([{**{k: v for k, v in g.items() if k != "params"},
                      "params": [tensors[i] for i in g["params"]]} for g in groups])
    history = [[p.detach().clone()] for p in tensors]
    for step_grads in grads:
        for p, g in zip(tensors, step_grads):
            p.grad = None if g is None else g.clone()
        optimizer.step()
        for trajectory, p in zip(history, tensors):
            trajectory.append(p.detach().clone())
    return [torch.stack(trajectory) for trajectory in history]


# --- cases ---------------------------------------------------------------------------------------

def adamw_case(seed: int, steps: int = 25, zero_grad: bool = False, **hyper) -> dict:
    """Parameters, data and hyperparameters in float64, and the reference AdamW's trajectory."""
    g = torch.Generator().manual_seed(seed)
    n, d_in, d_out = 16, 4, 3
    c = {"params": [torch.randn(d_in, d_out, generator=g, dtype=torch.float64),
                    torch.randn(d_out, generator=g, dtype=torch.float64)],
         "hyper": {**ADAMW_HYPER, **hyper}, "steps": steps}
    if not zero_grad:
        c["inputs"] = torch.randn(n, d_in, generator=g, dtype=torch.float64)
        c["targets"] = torch.randn(n, d_out, generator=g, dtype=torch.float64)
    c["expected"] = reference_adamw(c["params"], [{**c["hyper"], "params": [0, 1]}],
                                    regression_grads(c.get("inputs"), c.get("targets")), steps)
    return c


def adamw_decay_case(seed: int, steps: int = 5, lr: float = 0.1, weight_decay: float = 0.5, **hyper) -> dict:
    """Zero gradients: only the weight decay moves the parameters."""
    return adamw_case(seed, steps=steps, zero_grad=True, lr=lr, weight_decay=weight_decay, **hyper)


def adamw_first_step_case(seed: int, **hyper) -> dict:
    """A single step: where bias correction matters most."""
    return adamw_case(seed, steps=1, **hyper)


def adamw_state_case(seed: int, steps: int = 6) -> dict:
    """Two parameter groups with their own hyperparameters; parameter 1 has no gradient on steps 1
    and 2 (counting from 0) and parameter 2 none on step 0, so its first step is the optimizer's second."""
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(3, generator=g, dtype=torch.float64), torch.randn(2, 2, generator=g, dtype=torch.float64),
              torch.randn(4, generator=g, dtype=torch.float64)]
    groups = [{**ADAMW_HYPER, "params": [0, 1]},
              {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-8, "weight_decay": 0.3, "params": [2]}]
    missing = {(1, 1), (2, 1), (0, 2)}  # (step, parameter) pairs without a gradient
    grads = [[None if (step, i) in missing else torch.randn(p.shape, generator=g, dtype=torch.float64)
              for i, p in enumerate(params)] for step in range(steps)]
    return {"params": params, "groups": groups, "grads": grads,
            "expected": reference_adamw(params, groups, given_grads(grads), steps)}


CASES = {
    "adamw_trajectory": partial(adamw_case, 0),
    "adamw_decay_only": partial(adamw_decay_case, 1),
    "adamw_first_step": partial(adamw_first_step_case, 2),
    "adamw_state": partial(adamw_state_case, 3),
}


# --- checks --------------------------------------------------------------------------------------

def _flat(trajectories) -> torch.Tensor:  # (steps + 1, all parameter entries)
    return torch.cat([t.flatten(1) for t in trajectories], dim=1)


def _verdict(what: str, actual, params, groups, grad_fn, steps: int, mistakes: tuple[str, ...]) -> None:
    if not isinstance(actual, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in actual):
        raise CheckError(f"{what}: the parameters could not be followed (got {type_name(actual)})")
    flat = _flat(actual)
    for form in ACCEPTED_FORMS:
        expected = _flat(reference_adamw(params, groups, grad_fn, steps, form=form))
        if torch.allclose(flat, expected, atol=ATOL, rtol=RTOL):
            return
    reference = _flat(reference_adamw(params, groups, grad_fn, steps))
    finite = torch.isfinite(flat)
    if not finite.all():
        step, entry = (int(i) for i in (~finite).nonzero()[0])
        # Not a named mistake: a step count t still 0 on the first step (1 - beta^0 = 0 in the bias
        # correction) gives exactly this, but so does any other NaN, so it is only offered as a lead.
        hint = " (a step count t that is still 0 on the first step divides by 1 - beta^0 = 0)" if step == 1 else ""
        raise CheckError(f"{what}: the weights became NaN or inf at step {step} (entry {entry} of the "
                         f"flattened parameters): look for a division by zero{hint}")
    candidates = {}
    for mistake in mistakes:
        for form in ("standard", "decay_after"):
            candidates[f"{mistake}#{form}"] = _flat(reference_adamw(params, groups, grad_fn, steps,
                                                                    form=form, mistake=mistake))
    for key, candidate in candidates.items():
        if torch.allclose(flat, candidate, atol=ATOL, rtol=RTOL):
            raise CheckError(f"{what}: {MISTAKES[key.split('#')[0]]}")
    if flat.shape != reference.shape:
        raise CheckError(f"{what}: expected {reference.shape[0] - 1} steps of {reference.shape[1]} weights, "
                         f"got shape {tuple(flat.shape)}")
    difference = (flat - reference).abs()
    step, entry = (int(i) for i in torch.unravel_index(difference.argmax(), difference.shape))
    first = int((difference.amax(dim=1) > ATOL + RTOL * reference.abs().amax(dim=1)).nonzero()[0])
    raise CheckError(f"{what}: differs from the reference from step {first} on; the largest "
                     f"difference is at step {step}, entry {entry} of the flattened parameters: "
                     f"{flat[step, entry].item():.10g}, the reference {reference[step, entry].item():.10g} "
                     f"(tolerance {ATOL:g} + {RTOL:g} x |reference|)")


REGRESSION_MISTAKES = ("adamw_no_bias_correction", "adamw_l2", "adamw_decay_without_lr", "adamw_no_decay")


def _check_regression(what: str, cls, c: dict) -> None:
    weight, bias = c["params"]
    actual = drive(adamw_regression, cls, weight, bias, dict(c["hyper"]), c["steps"],
                   c.get("inputs"), c.get("targets"))
    _verdict(what, actual, c["params"], [{**c["hyper"], "params": [0, 1]}],
             regression_grads(c.get("inputs"), c.get("targets")), c["steps"], REGRESSION_MISTAKES)


def check_adamw_trajectory(cls, seed: int | None = None, **options) -> None:
    """cls(params, lr, betas, eps, weight_decay): many steps on a regression loss, in float64."""
    _check_regression("AdamW trajectory", cls, case("adamw_trajectory", adamw_case, seed, **options))


def check_adamw_decay(cls, seed: int | None = None, **options) -> None:
    """With zero gradients only the decoupled decay moves the weights: p_t = p_0 (1 - lr wd)^t."""
    _check_regression("AdamW with zero gradients", cls, case("adamw_decay_only", adamw_decay_case, seed, **options))


def check_adamw_first_step(cls, seed: int | None = None, **options) -> None:
    """With bias correction the first step moves each weight by about lr."""
    _check_regression("AdamW first step", cls, case("adamw_first_step", adamw_first_step_case, seed, **options))


def check_adamw_state(cls, seed: int | None = None, **options) -> None:
    """Two parameter groups, and parameters without a gradient on some steps: the state (t, m, v)
    must be kept per parameter, and each group's hyperparameters used for its parameters."""
    c = case("adamw_state", adamw_state_case, seed, **options)
    actual = drive(adamw_given_gradients, cls, c["params"], c["groups"], c["grads"])
    _verdict("AdamW with two parameter groups and missing gradients", actual, c["params"], c["groups"],
             given_grads(c["grads"]), len(c["grads"]), ("adamw_shared_step",))
