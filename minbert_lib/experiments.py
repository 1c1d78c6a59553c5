"""Named configurations: the report's ablation rows M0..M12, the kit's best recipe, and training budgets.

An `Experiment` says *what* is trained (schedule, heads, extensions); a
`Budget` says *how much* (epochs, batch size, learning rate, data limits).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from minbert_lib import report
from minbert_lib.errors import ConfigError
from minbert_lib.multitask import HeadConfig

LR_SCHEDULES = ("constant", "linear")
SIMILARITY_LOSSES = ("mse", "cosent")


@dataclass
class Experiment:
    name: str
    description: str
    schedule: str = "TM1"                 # BL | TM1 | TM2
    heads: HeadConfig = field(default_factory=HeadConfig)
    mnr: bool = False                     # MNR pre-training step before fine-tuning
    freeze_last: int | None = None        # FLk: train only the last k encoder layers
    reweight: bool = False                # RW: weight losses by dataset share
    similarity_loss: str = "mse"          # mse (the report) | cosent
    layerwise_lr_decay: float = 1.0       # 1.0: one learning rate for the whole encoder
    lr_scale: float = 1.0                 # the encoder learns at the budget's lr * this
    head_lr_scale: float = 1.0            # heads learn at the encoder's lr * this (the report: 1, one rate for all)
    lr_schedule: str = "constant"         # constant (the report) | linear: warm up, then decay to 0

    def __post_init__(self):
        for name, choices in (("lr_schedule", LR_SCHEDULES), ("similarity_loss", SIMILARITY_LOSSES)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name}={getattr(self, name)!r}: choose one of {', '.join(choices)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _row(name, description, schedule, sts="linear", para="linear", **extensions) -> Experiment:
    heads = HeadConfig(similarity_head=sts, paraphrase_head=para)
    return Experiment(name, description, schedule, heads, **extensions)


# Table 2 of the report: every row and the extensions it adds.
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    _row("M0", "BL", "BL"),
    _row("M1", "BL+TM1", "TM1"),
    _row("M2", "BL+TM1+MNR", "TM1", mnr=True),
    _row("M3", "BL+TM1+COS-S", "TM1", sts="cos"),
    _row("M4", "BL+TM1+COS-S+COS-P", "TM1", sts="cos", para="cos"),
    _row("M5", "BL+TM1+COS-S+MNR", "TM1", sts="cos", mnr=True),
    _row("M6", "BL+TM1+COS-S+FL2", "TM1", sts="cos", freeze_last=2),    # no MNR: only M2 and M5 have it
    _row("M7", "BL+TM1+COS-S+FL4", "TM1", sts="cos", freeze_last=4),
    _row("M8", "BL+TM2", "TM2"),
    _row("M9", "BL+TM2+COS-S", "TM2", sts="cos"),
    _row("M10", "BL+TM2+COS-S+FL2", "TM2", sts="cos", freeze_last=2),
    _row("M11", "BL+TM2+COS-S+FL4", "TM2", sts="cos", freeze_last=4),
    _row("M12", "BL+TM2+COS-S+RW", "TM2", sts="cos", reweight=True),
    # The kit's own recipe: mean pooling (how MiniLM was pre-trained), paraphrase as a cosine
    # with a learned scale and threshold, cosine similarity trained with CoSENT after MNR,
    # the encoder at twice the budget's learning rate with layer-wise decay, and heads that learn
    # 20 times faster than the encoder (the sentiment head starts from random weights).
    Experiment(
        "best", "kit: mean pooling, scaled-cosine paraphrase, COS-S with CoSENT, MNR, TM1",
        schedule="TM1",
        heads=HeadConfig(similarity_head="cos", paraphrase_head="cos-scaled", pooling="mean", dropout=0.1),
        mnr=True, similarity_loss="cosent", lr_scale=2.0, layerwise_lr_decay=0.9, head_lr_scale=20.0,
    ),
]}

# Dev scores the report gives for every row (SST accuracy, Quora accuracy, STS Pearson): see report.py
REPORT_DEV: dict[str, tuple[float, float, float]] = {name: (row.sst, row.quora, row.sts)
                                                     for name, row in report.TABLE2.items()}
REPORT_BEST_ROW = report.BEST_DEV_ROW


@dataclass
class Budget:
    name: str
    epochs: int
    batch_size: int
    lr: float
    max_length: int
    dropout: float | None = None          # None: keep the experiment's head dropout
    train_limit: int | None = None        # examples per task (None: all)
    train_share: float | None = None      # instead: this share of each task's train set, which keeps the
                                          # tasks' proportions (RW weighs by the official sizes either way)
    dev_limit: int | None = None
    mnr_epochs: int = 1
    bf16: bool = True                     # autocast where the hardware supports it
    train_eval_sample: int = 1000         # train metrics are measured on this many examples per task
    epoch_dev_sample: int | None = None   # per-epoch dev scores on this many examples per task (None: all);
                                          # the best model is always scored on all of dev at the end
    # The budget's own recipe, which replaces the experiment's where set (None: keep the experiment's).
    # A row stays the row it names: schedule, heads, MNR, freezing and RW are the experiment's.
    pooling: str | None = None            # cls | mean
    head_lr_scale: float | None = None    # heads learn at the encoder's lr * this


BUDGETS: dict[str, Budget] = {
    # about two minutes on 2 CPU cores: the demo and a first look (the tests train the tiny model with
    # it). Three passes over 384 examples per task: after one pass (24 steps) the `best` recipe's SST
    # head still answered near the majority class (0.246 against a floor of 0.281 on its dev sample);
    # after three, 0.375 (2-core AMD EPYC, seed 0).
    "quick": Budget("quick", epochs=3, batch_size=16, lr=5e-5, max_length=48, train_limit=384,
                    dev_limit=256, train_eval_sample=128),
    # all of the mirror data, at most about ten minutes a Table 2 row on 2 CPU cores: a TM1
    # epoch trains 1.17 M real tokens at about 2,900 tokens/s in bf16 (benchmarks/results/epoch.md),
    # so one epoch is what fits. In one epoch, heads that start from random weights and learn at the
    # encoder's 5e-5 stay at the majority class (Quora 0.625 in 9 of 13 rows, results/README.md), and
    # MiniLM's [CLS] pooler was never trained to carry a sentence's meaning (MiniLM was pre-trained with
    # mean pooling): so this budget pools by mean and lets the heads learn 20 times faster.
    "cpu": Budget("cpu", epochs=1, batch_size=32, lr=5e-5, max_length=64, epoch_dev_sample=2000,
                  pooling="mean", head_lr_scale=20.0),
    # the report's protocol, meant for a GPU
    "paper": Budget("paper", epochs=10, batch_size=64, lr=1e-5, max_length=128, dropout=0.3, bf16=False),
}


def parse_range(part: str) -> list[str]:
    """'M3-M7' -> ['M3', 'M4', 'M5', 'M6', 'M7']."""
    ends = [end.strip().lstrip("Mm") for end in part.split("-")]
    if len(ends) != 2 or not all(end.isdigit() for end in ends) or int(ends[0]) > int(ends[1]):
        raise ConfigError(f"--rows: {part!r} is not a range of rows: write it as first-last, e.g. M0-M12")
    return [f"M{i}" for i in range(int(ends[0]), int(ends[1]) + 1)]


def parse_rows(spec: str) -> list[str]:
    """'M0-M12' or 'M1,M3,M7' -> row names, checked against EXPERIMENTS."""
    names = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            names += parse_range(part)
        elif part:
            names.append(part if part == "best" else part.upper())
    if not names:
        raise ConfigError(f"--rows {spec!r} names no rows: give e.g. M0-M12 or M1,M3,M7")
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ConfigError(f"unknown rows {unknown}: the rows are {sorted(EXPERIMENTS)}")
    return names


def get_experiment(name: str) -> Experiment:
    key = name if name == "best" else name.upper()
    if key not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}: choose one of {list(EXPERIMENTS)}")
    return EXPERIMENTS[key]


def with_budget_recipe(experiment: Experiment, budget: Budget) -> Experiment:
    """The experiment as `budget` trains it: the budget's pooling and head learning rate, where it sets them."""
    if budget.pooling is not None:
        experiment = dataclasses.replace(experiment, heads=dataclasses.replace(experiment.heads,
                                                                               pooling=budget.pooling))
    if budget.head_lr_scale is not None:
        experiment = dataclasses.replace(experiment, head_lr_scale=budget.head_lr_scale)
    return experiment


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise ConfigError(f"unknown budget {name!r}: choose one of {list(BUDGETS)}")
    return BUDGETS[name]
