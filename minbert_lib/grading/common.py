"""What every notebook's grading module shares: CheckError, the named mistakes, compare,
the sanity cases, and the generic drivers that run a student's function or module.

The drivers here (`call_function`, `module_outputs`) run inside the student's process when
grading: they take plain data, run the student's code on copies of it, and return plain data.
They never decide anything; the checks compare what they return with the reference.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from minbert_lib.notebook import assignment_dir

SANITY_FILE = "sanity.pt"

MISTAKES: dict[str, str] = {}  # every notebook module registers its own


def register(mistakes: dict[str, str]) -> dict[str, str]:
    """Add a notebook's named mistakes to MISTAKES (one message per name, across the course)."""
    for key, message in mistakes.items():
        if MISTAKES.get(key, message) != message:
            raise ValueError(f"mistake {key!r} registered twice with different messages")
    MISTAKES.update(mistakes)
    return mistakes


register({
    "input_changed_in_place": "the function changed one of its input tensors in place (such as `query /= ...`, "
                              "`x.mul_(...)` or `x[...] = ...`): the caller still needs its inputs, so compute "
                              "new tensors instead (`scores = scores / math.sqrt(d_k)`)",
})


class CheckError(AssertionError):
    """A check failed; the message says what is wrong, in one sentence."""


# --- plain data across the process boundary -------------------------------------------------

def plain(value):
    """`value` as plain data: tensors (detached copies), numbers, str, bool, None, and lists,
    tuples and dicts of them. A NamedTuple or dataclass becomes a dict of its fields; anything
    else becomes {"unsupported_type": its type's name}, which the checks report."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if value is None or isinstance(value, (bool, int, float, str, torch.dtype)):
        return value
    if hasattr(value, "_fields") and isinstance(value, tuple):  # a NamedTuple such as BertOutput
        return {name: plain(getattr(value, name)) for name in value._fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict) and all(isinstance(k, (str, int)) for k in value):
        return {k: plain(v) for k, v in value.items()}
    try:  # numpy scalars and arrays
        import numpy as np
        if isinstance(value, np.ndarray):
            return torch.from_numpy(value.copy())
        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover
        pass
    return {"unsupported_type": type(value).__name__}


def type_name(value) -> str:
    if isinstance(value, dict) and set(value) == {"unsupported_type"}:
        return value["unsupported_type"]
    return type(value).__name__


def _copy(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _changed(before, after) -> bool:
    if isinstance(before, torch.Tensor):
        return not (before.shape == after.shape and torch.equal(before, after))
    if isinstance(before, (list, tuple)):
        return any(_changed(b, a) for b, a in zip(before, after))
    if isinstance(before, dict):
        return any(_changed(before[k], after.get(k)) for k in before)
    return False


def call_function(fn, *args, **kwargs) -> dict:
    """Driver: fn(*args, **kwargs) on copies of the arguments.

    Returns {"result": the result as plain data, "changed": [indices of the positional
    arguments (or names of keyword arguments) that fn changed in place]}.
    """
    given_args, given_kwargs = _copy(args), _copy(kwargs)
    result = fn(*given_args, **given_kwargs)
    changed = [i for i, (a, b) in enumerate(zip(args, given_args)) if _changed(a, b)]
    changed += [k for k in kwargs if _changed(kwargs[k], given_kwargs[k])]
    return {"result": plain(result), "changed": changed}


def build(spec):
    """A constructor argument from plain data: {"config": {...}} is a BertConfig,
    {"encoder": {...}} a kit BertModel of that config, anything else itself."""
    from minbert_lib.config import BertConfig

    if isinstance(spec, dict) and set(spec) == {"config"}:
        return BertConfig(**spec["config"])
    if isinstance(spec, dict) and set(spec) == {"encoder"}:
        from minbert_lib.model import BertModel
        return BertModel(BertConfig(**spec["encoder"]))
    return spec


def module_outputs(cls, init_args: list, init_kwargs: dict, state: dict, calls: list,
                   train: bool = False, seed: int = 0, eval_modules: tuple = ()) -> dict:
    """Driver: build cls(*init_args, **init_kwargs), load `state`, run each call.

    `calls` is a list of (method name, args, kwargs); each runs under no_grad on copies of its
    arguments, in eval mode, or with `train` in training mode (the submodules named in
    `eval_modules` left in eval mode) right after torch.manual_seed(seed), so that dropout
    draws the same masks as the reference's run. Returns {"state_keys": the module's
    state_dict names} when they differ from `state`'s, else {"outputs": [each call's result]}.
    """
    module = cls(*[build(a) for a in init_args], **{k: build(v) for k, v in init_kwargs.items()})
    keys = sorted(module.state_dict())
    if set(keys) != set(state):
        return {"state_keys": keys}
    module.load_state_dict(state)
    module.train(train)
    for name in eval_modules:
        module.get_submodule(name).eval()
    outputs = []
    with torch.no_grad():
        for method, args, kwargs in calls:
            torch.manual_seed(seed)
            outputs.append(plain(getattr(module, method)(*_copy(args), **_copy(kwargs))))
    return {"outputs": outputs}


# --- on the grader's side ---------------------------------------------------------------------

def result_of(what: str, answer: dict, names: tuple[str, ...] = ()):
    """The result of a call_function answer; CheckError when the student changed an input in place."""
    if answer["changed"]:
        which = answer["changed"][0]
        name = names[which] if isinstance(which, int) and which < len(names) else which
        raise CheckError(f"{what}: argument {name!r}: {MISTAKES['input_changed_in_place']}")
    return answer["result"]


def outputs_of(cls, answer: dict, state: dict) -> list:
    """The outputs of a module_outputs answer; CheckError naming the parameters that differ."""
    if "state_keys" in answer:
        theirs, ours = set(answer["state_keys"]), set(state)
        raise CheckError(f"{getattr(cls, '__name__', 'the module')} has parameters {sorted(theirs - ours)} that "
                         f"the reference lacks and lacks {sorted(ours - theirs)}: keep the __init__ as it was given")
    return answer["outputs"]


def _where(index: tuple[int, ...]) -> str:
    return "element " + (str(index) if len(index) != 1 else f"({index[0]},)") if index else "the value"


def compare(what: str, actual, expected: torch.Tensor, mistakes: dict[str, torch.Tensor] | None = None,
            atol: float = 1e-5, rtol: float = 1e-4, nan_hint: str = "",
            variants: tuple[torch.Tensor, ...] = ()) -> None:
    """Raise CheckError unless `actual` matches `expected` or one of the accepted `variants` (what
    another correct form computes, e.g. with the tanh GELU); name the mistake it matches, if any.

    A mistake is named only when the result matches what that mistake computes (to the same
    tolerance); otherwise the message says which element differs, by how much, and the shape.
    The default tolerance suits float32 results of O(1) built from a few dozen operations
    (float32 rounding is 6e-8 relative per operation).
    """
    mistakes = mistakes or {}

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return a.shape == b.shape and torch.allclose(a.to(b.dtype), b, rtol=rtol, atol=atol)

    if not isinstance(actual, torch.Tensor):
        raise CheckError(f"{what}: expected a torch.Tensor, got {type_name(actual)}")
    actual = actual.detach()
    if actual.is_complex() or actual.dtype == torch.bool:
        raise CheckError(f"{what}: expected a real-valued tensor, got dtype {actual.dtype}")
    if close(actual, expected) or any(close(actual, variant) for variant in variants):
        return
    for key, candidate in mistakes.items():  # "name#variant" keys: another way to make the same mistake
        if close(actual, candidate):
            raise CheckError(f"{what}: {MISTAKES[key.split('#')[0]]}")
    if actual.shape != expected.shape:
        raise CheckError(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}")
    finite = torch.isfinite(actual)
    if not finite.all():
        index = tuple(int(i) for i in (~finite).nonzero()[0])
        raise CheckError(f"{what}: the result contains NaN or inf, first at {_where(index)} "
                         f"({actual[index].item()}){nan_hint}")
    difference = (actual.to(expected.dtype) - expected).abs()
    index = tuple(int(i) for i in torch.unravel_index(difference.argmax(), difference.shape)) \
        if difference.dim() else ()
    raise CheckError(f"{what}: {_where(index)} is {actual[index].item():.6g}, the reference "
                     f"{expected[index].item():.6g}; max abs difference {difference.max().item():.3g} "
                     f"(tolerance {atol:g} + {rtol:g} x |reference|); check each step against the formula above")


# --- the sanity cases -------------------------------------------------------------------------

def load(name: str) -> dict:
    """One case of the running notebook's sanity file."""
    path = assignment_dir() / SANITY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the notebook from its own folder, "
                                f"the one that holds {SANITY_FILE}")
    cases = torch.load(path, weights_only=True)
    if name not in cases:
        raise KeyError(f"{path} has no case {name!r} (it has {sorted(cases)}): "
                       "this check belongs to another assignment")
    return cases[name]


def case(name: str, make, seed: int | None, **kwargs) -> dict:
    """The stored sanity case, or with a seed (or other options) a fresh one made the same way."""
    if seed is None and not kwargs:
        return load(name)
    return make(0 if seed is None else seed, **kwargs)


def random_attention_mask(generator: torch.Generator, batch: int, length: int) -> torch.Tensor:
    """(B, T) of 1 = real token, 0 = padding; row 0 is full, the others are padded at the end."""
    lengths = torch.randint(1, length + 1, (batch,), generator=generator)
    lengths[0] = length
    return (torch.arange(length)[None, :] < lengths[:, None]).long()  # (B, T)


def randomize_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Give every parameter a spread-out random value, so that mistakes change the outputs a lot."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() == 1 and name.endswith("weight"):  # LayerNorm gains: around 1
                param.copy_(1.0 + 0.2 * torch.randn(param.shape, generator=generator))
            elif param.dim() == 1:                             # biases
                param.copy_(0.2 * torch.randn(param.shape, generator=generator))
            else:                                              # (out, in) matrices, embedding tables
                param.copy_(torch.randn(param.shape, generator=generator) / param.shape[-1] ** 0.5)
    return module.eval()


def compare_train_mode(what: str, actual, expected: torch.Tensor, mistakes: dict[str, torch.Tensor],
                       wrong_place: str, variants: tuple[torch.Tensor, ...] = ()) -> None:
    """The training-mode output of a module, run right after the same torch.manual_seed as the
    reference's: a match, a named mistake (dropout missing...), or, since the eval-mode output was
    right, dropout in another place: the mistake named `wrong_place`."""
    try:
        compare(what, actual, expected, mistakes, variants=variants)
    except CheckError as err:
        named = any(MISTAKES[m.split("#")[0]] in str(err) for m in mistakes)
        if named or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape \
                or not torch.isfinite(actual).all():
            raise
        raise CheckError(f"{what}: {MISTAKES[wrong_place]}") from None
