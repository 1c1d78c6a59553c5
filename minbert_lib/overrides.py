"""`--set key=value`: change one training setting of a run without writing a new experiment or budget.

    minbert train --experiment M3 --budget quick --set lr=1e-4 --set batch_size=16 --set head_lr_scale=20

A key is a field of the budget (how much: lr, batch_size, max_length, dropout, train_limit ...), of
the experiment (what: lr_scale, head_lr_scale, layerwise_lr_decay, lr_schedule, similarity_loss ...)
or of its heads (pooling, paraphrase_head, similarity_head, pair_features); `SETTINGS` lists them.
`dropout` is the budget's, which replaces the heads' own. Values are converted to the field's type;
`none` clears a field that may be empty (train_limit=none: all the data). The run's settings.json
keeps the overrides and the experiment and budget they produced, so a run folder is only resumed
with the same ones.
"""
from __future__ import annotations

import dataclasses

from minbert_lib.errors import ConfigError
from minbert_lib.experiments import Budget, Experiment
from minbert_lib.multitask import HeadConfig

AT_LEAST_ZERO = {"dropout", "freeze_last"}  # every other number must be above 0
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _fields(kind, skip: set[str]) -> dict[str, str]:
    return {f.name: f.type for f in dataclasses.fields(kind) if f.name not in skip}


# key -> (which part it changes, the field's type as written in its dataclass)
SETTINGS: dict[str, tuple[str, str]] = {
    **{name: ("heads", kind) for name, kind in _fields(HeadConfig, {"dropout"}).items()},
    **{name: ("experiment", kind) for name, kind in _fields(Experiment, {"name", "description", "heads"}).items()},
    # a budget's pooling and head_lr_scale replace the experiment's (experiments.with_budget_recipe): --set changes
    # the experiment's, which is what the run trains
    **{name: ("budget", kind) for name, kind in _fields(Budget, {"name", "pooling", "head_lr_scale"}).items()},
}


def parse(assignments: list[str]) -> dict[str, str]:
    """['lr=1e-4', 'batch_size=16'] -> {'lr': '1e-4', 'batch_size': '16'}, each key known and given once."""
    overrides: dict[str, str] = {}
    for item in assignments:
        key, equals, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key or not value.strip():
            raise ConfigError(f"--set {item!r}: write it as key=value, e.g. --set lr=1e-4")
        if key not in SETTINGS:
            raise ConfigError(f"--set {item!r}: {key!r} is not a training setting; the settings are "
                              f"{', '.join(sorted(SETTINGS))}")
        if key in overrides:
            raise ConfigError(f"--set {key} is given twice ({overrides[key]!r} and {value.strip()!r}): keep one")
        overrides[key] = value.strip()
    return overrides


def convert(key: str, text: str):
    """The value of `key` that `text` stands for, checked: '1e-4' -> 0.0001 for lr."""
    kind = SETTINGS[key][1]
    if text.lower() == "none":
        if "None" not in kind:
            raise ConfigError(f"--set {key}=none: {key} needs a value")
        return None
    base = kind.replace("| None", "").strip()
    try:
        if base == "bool":
            if text.lower() not in TRUE + FALSE:
                raise ValueError
            return text.lower() in TRUE
        value = {"int": int, "float": float, "str": str}[base](text)
    except ValueError:
        raise ConfigError(f"--set {key}={text}: {key} takes a {base}") from None
    if base in ("int", "float") and (value < 0 if key in AT_LEAST_ZERO else value <= 0):
        raise ConfigError(f"--set {key}={text}: {key} must be {'0 or more' if key in AT_LEAST_ZERO else 'above 0'}")
    if key == "dropout" and value >= 1:
        raise ConfigError(f"--set dropout={text}: a dropout probability is below 1")
    if key == "train_share" and value > 1:
        raise ConfigError(f"--set train_share={text}: a share of the training set is at most 1")
    return value


def apply(experiment: Experiment, budget: Budget, overrides: dict[str, str]) -> tuple[Experiment, Budget]:
    """The experiment and budget with the overrides in place (the originals are left as they are)."""
    changes: dict[str, dict] = {"heads": {}, "experiment": {}, "budget": {}}
    for key, text in overrides.items():
        if key not in SETTINGS:
            raise ConfigError(f"{key!r} is not a training setting; the settings are {', '.join(sorted(SETTINGS))}")
        changes[SETTINGS[key][0]][key] = convert(key, text)
    try:  # HeadConfig and Experiment check their choices (pooling, lr_schedule ...)
        heads = dataclasses.replace(experiment.heads, **changes["heads"])
        experiment = dataclasses.replace(experiment, heads=heads, **changes["experiment"])
    except ValueError as err:
        raise ConfigError(f"--set: {err}") from None
    return experiment, dataclasses.replace(budget, **changes["budget"])


def folder_suffix(overrides: dict[str, str]) -> str:
    """'-batch_size=16-lr=1e-4' for the default run folder's name ('' without overrides)."""
    return "".join(f"-{key}={overrides[key]}" for key in sorted(overrides))
