"""From a TrainSettings of names to the objects the training loop takes, then the loop: `minbert train`.

    run_dir = train(TrainSettings(experiment="M7", budget="cpu"))
    run_dir = train(settings, experiment=my_experiment, budget=my_budget, schedule=my_schedule)

The names in settings are looked up in experiments.py (Table 2's rows, the budgets) and schedules.py;
an Experiment, Budget or Schedule given to train() is used instead, so that a script can train its own
without registering it anywhere (its names then only name the run folder). train() checks the settings,
reuses or resumes the run folder (runs.py), builds the data, model, optimizer and learning-rate schedule,
runs the loop (train.py) and, once the last epoch is done, writes the best model's predictions
(predictions.py).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from minbert_lib import distributed
from minbert_lib.batching import BucketBatchSampler, TaskDataset, mnr_batches
from minbert_lib.config import model_config
from minbert_lib.data import Example, limited, load_split, split_path
from minbert_lib.device import bf16_supported, pick_device, seed_everything
from minbert_lib.errors import ConfigError
from minbert_lib.experiments import LR_SCHEDULES, Budget, Experiment, get_budget, get_experiment, with_budget_recipe
from minbert_lib.losses import dataset_share_weights
from minbert_lib.model import BertModel
from minbert_lib.multitask import PARAPHRASE_HEADS, MultitaskBert, freeze_all_but_last, pair_encoding_of
from minbert_lib.optim import AdamW
from minbert_lib.overrides import apply as apply_overrides
from minbert_lib.predictions import fixed_sample, score_split, write_best_predictions
from minbert_lib.runs import (LAST, changed_since, default_run_dir, finished, load_last, new_history,
                              requested_bf16, run_definition, write_json)
from minbert_lib.schedules import Schedule, TaskStream, named_schedule
from minbert_lib.tasks import REPORT_TASKS, get_task
from minbert_lib.tokenizer import Tokenizer
from minbert_lib.train import Learner, Progress, StepLoss, mnr_pretrain, resume, train_epochs

MIN_CURVE_POINTS = 8  # dev evaluations per run by default
MNR_MIN_STS_SIMILARITY = 4.0  # STS pairs at least this similar count as positives for MNR
WARMUP_FRACTION = 0.1


@dataclass
class TrainSettings:
    """One run, by name: what `minbert train`'s options say (settings.json keeps it)."""
    experiment: str = "best"
    budget: str = "cpu"
    seed: int = 0
    model: str = "minilm-l6"          # a model name or weights folder; "tiny" = a random tiny encoder (tests)
    run_dir: str | None = None        # default: runs/<experiment>-<budget>-seed<seed>
    data_dir: str | None = None
    device: str | None = None         # default: cuda, then mps, then cpu
    bf16: bool | None = None          # None: the budget's choice, where the hardware supports it
    epochs: int | None = None         # override the budget's epochs
    stop_after_epochs: int | None = None  # stop early (to test resuming); the run can be resumed
    progress: bool = True
    eval_every: int | None = None     # steps between dev evaluations and checkpoints (None: 1/8 of the run; 0: per epoch)
    keep_last: bool = False           # keep last.pt once the run has finished (it is removed by default)
    plots: bool = True                # draw learning_curves.png and confusion_matrices.png at the end (notebooks
                                      # draw their own)
    overrides: dict[str, str] = field(default_factory=dict)  # --set key=value: see overrides.py


# --- settings -----------------------------------------------------------------------

def epochs_for(settings: TrainSettings, budget: Budget) -> int:
    """--epochs where it was given, else the budget's."""
    if settings.epochs is None:
        return budget.epochs
    if settings.epochs < 1:
        raise ConfigError(f"--epochs {settings.epochs}: a run trains at least 1 epoch")
    return settings.epochs


def resolve(settings: TrainSettings, experiment: Experiment | None = None,
            budget: Budget | None = None) -> tuple[Experiment, Budget]:
    """The experiment and budget a run trains: the given ones, else the named ones, the experiment as the
    budget trains it (its pooling and head learning rate, where it sets them), with --set applied last."""
    budget = budget or get_budget(settings.budget)
    experiment = with_budget_recipe(experiment or get_experiment(settings.experiment), budget)
    return apply_overrides(experiment, budget, settings.overrides)


def definition(settings: TrainSettings, experiment: Experiment | None = None, budget: Budget | None = None) -> dict:
    """The run_definition of these settings (compare it with a run folder's: runs.changed_since)."""
    return resolved_definition(settings, *resolve(settings, experiment, budget))


def resolved_definition(settings: TrainSettings, experiment: Experiment, budget: Budget) -> dict:
    """The run_definition of these settings, their experiment and budget already resolved."""
    return run_definition(experiment, budget, epochs_for(settings, budget), settings.model, settings.seed,
                          settings.eval_every, settings.bf16)


def eval_interval(settings: TrainSettings, total_steps: int) -> int:
    """Steps between dev evaluations (and checkpoints) within an epoch: --eval-every, else an eighth of the
    run's steps, so that every run has at least 8 points per curve; 0 means at the end of each epoch only."""
    if settings.eval_every is None:
        return max(1, total_steps // MIN_CURVE_POINTS)
    return settings.eval_every or total_steps + 1


# --- data ---------------------------------------------------------------------------

def pair_encoding_for(task: str, experiment: Experiment) -> str:
    """Quora pairs as the paraphrase head reads them (one sequence for the cross-encoder, both ways
    for cos-cross); other pairs (STS) always apart, for the bi-encoder heads."""
    if get_task(task).head != "paraphrase":
        return "bi"
    return pair_encoding_of(PARAPHRASE_HEADS[experiment.heads.paraphrase_head])


def tasks_of(schedule: Schedule) -> tuple[str, ...]:
    """What a run trains heads for and scores: the report's three tasks, then any other the schedule trains."""
    return REPORT_TASKS + tuple(task for task in schedule.tasks if task not in REPORT_TASKS)


def rw_weights(loaded_sizes: dict[str, int]) -> dict[str, float]:
    """RW's loss weights: each task's share of all training examples, counted in the official train files
    (the report's data: 141,506 Quora pairs), so that neither a partial file (the mirror's Quora) nor a
    budget's cut changes them; a task whose files are its own counts the examples loaded."""
    return dataset_share_weights({t: get_task(t).data_file("train").rows or n for t, n in loaded_sizes.items()})


def load_examples(data_dir, budget: Budget, seed: int, totals: dict | None = None,
                  tasks: tuple[str, ...] = REPORT_TASKS) -> dict[str, dict[str, list[Example] | None]]:
    """{task: {"train": [...], "dev": [...], "test": [...] or None}}, cut to the budget's limits; `totals`,
    where given, receives each file's size before the cut as {(task, split): rows}."""
    examples = {}
    for task in tasks:
        splits = {}
        for split, limit in (("train", budget.train_limit), ("dev", budget.dev_limit), ("test", budget.dev_limit)):
            path = split_path(task, split, data_dir)
            if split == "test" and not path.exists():
                print(f"note: {path.name} is missing: no {task} test predictions")
                splits[split] = None
                continue
            rows = load_split(task, split, data_dir)
            if totals is not None:
                totals[(task, split)] = len(rows)
            if split == "train" and budget.train_share is not None:
                limit = max(1, round(len(rows) * budget.train_share))
            splits[split] = limited(rows, limit, seed)
        examples[task] = splits
    return examples


def build_datasets(examples: dict, experiment: Experiment, budget: Budget, tokenizer: Tokenizer) -> dict:
    """The same layout as `examples`, each split tokenized once into a TaskDataset."""
    return {task: {split: None if rows is None else
                   TaskDataset(rows, tokenizer, pair_encoding_for(task, experiment), budget.max_length)
                   for split, rows in splits.items()}
            for task, splits in examples.items()}


def mnr_positive_pairs(examples: dict) -> list[Example]:
    """Positive pairs for MNR: STS train pairs with similarity >= 4 and Quora train duplicates."""
    sts = [e for e in examples["sts"]["train"] if e.label >= MNR_MIN_STS_SIMILARITY]
    quora = [e for e in examples["quora"]["train"] if e.label == 1]
    return sts + quora


# --- model, optimizer, learning-rate schedule ----------------------------------------

def build_model(settings: TrainSettings, experiment: Experiment, budget: Budget, tokenizer: Tokenizer,
                tasks: tuple[str, ...] = REPORT_TASKS) -> MultitaskBert:
    """The encoder settings.model names (pretrained, or "tiny" and random) under the experiment's heads,
    one head per task of `tasks`."""
    overrides = {}
    if budget.dropout is not None:
        overrides["hidden_dropout"] = budget.dropout
    if settings.model == "tiny":
        # 6 layers like MiniLM, so that FL2 and FL4 mean the same; hidden 32 keeps it fast
        encoder = BertModel(model_config("tiny", vocab_size=tokenizer.vocab_size, num_layers=6,
                                          max_position_embeddings=512, **overrides))
    else:
        encoder = BertModel.from_pretrained(settings.model, **overrides)
    heads = experiment.heads
    if budget.dropout is not None:
        heads = dataclasses.replace(heads, dropout=budget.dropout)
    return MultitaskBert(encoder, heads, tasks)


def make_optimizer(model: MultitaskBert, lr: float, layerwise_decay: float = 1.0, head_lr_scale: float = 1.0,
                   fused: bool = True) -> torch.optim.Optimizer:
    """AdamW; with layerwise_decay < 1, layer i of L gets lr * decay^(L - i), the embeddings lr * decay^(L+1).
    The task heads (every parameter outside the encoder) get lr * head_lr_scale: they start from random
    weights, and at an encoder's learning rate a short run barely moves them.

    fused=True takes torch's fused AdamW, the same update as the kit's AdamW (tests/test_optim.py
    checks they agree) in one pass over memory instead of about ten: on 2 CPU cores the kit's
    step costs about 80 ms for MiniLM, the fused one about 13 ms (benchmarks/README.md).
    """
    num_layers = len(model.encoder.layers)
    groups: dict[float, list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith("encoder.embeddings."):
            group_lr = lr * layerwise_decay ** (num_layers + 1)
        elif name.startswith("encoder.layers."):
            group_lr = lr * layerwise_decay ** (num_layers - int(name.split(".")[2]))
        elif name.startswith("encoder."):
            group_lr = lr  # the pooler
        else:
            group_lr = lr * head_lr_scale
        groups.setdefault(group_lr, []).append(param)
    param_groups = [{"params": params, "lr": group_lr} for group_lr, params in groups.items()]
    if fused:
        return torch.optim.AdamW(param_groups, lr=lr, weight_decay=0.01, fused=True)
    return AdamW(param_groups, lr=lr, weight_decay=0.01)


def make_lr_schedule(optimizer: torch.optim.Optimizer, kind: str, total_steps: int):
    """constant: every group keeps its rate. linear: each rate rises from 0 over the first 10% of
    `total_steps`, then falls linearly to 0 at the last step, as in BERT's own fine-tuning."""
    if kind not in LR_SCHEDULES:
        raise ConfigError(f"lr_schedule={kind!r}: choose one of {LR_SCHEDULES}")
    warmup = max(1, int(WARMUP_FRACTION * total_steps))

    def factor(step: int) -> float:  # scales every group's base rate before optimizer step `step` + 1
        if kind == "constant":
            return 1.0
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --- a run -----------------------------------------------------------------------------

def train(settings: TrainSettings, experiment: Experiment | None = None, budget: Budget | None = None,
          schedule: Schedule | None = None) -> Path:
    """Train one experiment with one budget; resume from `last.pt` when the run folder has one."""
    started = time.perf_counter()
    experiment, budget = resolve(settings, experiment, budget)
    schedule = schedule or named_schedule(experiment.schedule)
    epochs, device = epochs_for(settings, budget), pick_device(settings.device)  # checked before anything is written
    if settings.seed < 0:
        raise ConfigError(f"--seed {settings.seed}: seeds are whole numbers from 0")
    if settings.eval_every is not None and settings.eval_every < 0:
        raise ConfigError(f"--eval-every {settings.eval_every}: give a number of steps (0: at each epoch's end only)")
    run_dir = Path(settings.run_dir) if settings.run_dir else default_run_dir(settings)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is a file: give a folder (new or holding a run) for the run")
    changed = changed_since(run_dir, resolved_definition(settings, experiment, budget))
    if changed and ((run_dir / LAST).exists() or (run_dir / "best-dev-scores.json").exists()):
        raise ConfigError(f"{run_dir} holds a run whose {', '.join(changed)} differ from this one: resume it "
                          "with the settings it started with, or give another --run-dir")
    if not changed and finished(run_dir, epochs):
        print(f"{run_dir} holds this run, finished: nothing to train (give another --run-dir to train it again)")
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    device = distributed.setup(device)
    use_bf16 = requested_bf16(settings.bf16, budget.bf16) and bf16_supported(device)
    lr = budget.lr * experiment.lr_scale
    main = distributed.is_main_process()
    show_progress = settings.progress and main
    if main:
        write_json(run_dir / "settings.json", {
            "settings": dataclasses.asdict(settings), "experiment": experiment.to_dict(),
            "budget": dataclasses.asdict(budget), "device": str(device), "bf16": use_bf16, "epochs": epochs,
            "processes": distributed.world_size(),
        })

    seed_everything(settings.seed)
    tokenizer = Tokenizer.from_pretrained("minilm-l6" if settings.model == "tiny" else settings.model)
    totals = {}
    tasks = tasks_of(schedule)
    examples = load_examples(settings.data_dir, budget, settings.seed, totals, tasks)
    datasets = build_datasets(examples, experiment, budget, tokenizer)
    model = build_model(settings, experiment, budget, tokenizer, tasks).to(device)
    streams = {task: TaskStream(BucketBatchSampler(datasets[task]["train"].lengths, budget.batch_size,
                                                   seed=settings.seed).batches)
               for task in schedule.tasks}
    weights = (rw_weights({t: len(datasets[t]["train"]) for t in streams}) if experiment.reweight
               else {t: 1.0 for t in streams})
    samples = {"train": fixed_sample(datasets, "train", budget.train_eval_sample, settings.seed),
               "dev": fixed_sample(datasets, "dev", budget.epoch_dev_sample, settings.seed)}
    steps = schedule.steps_per_epoch(streams)
    total_steps = epochs * steps
    eval_every = eval_interval(settings, total_steps)
    history = new_history(datasets, samples["dev"], steps, budget.batch_size, eval_every)

    last, notes = load_last(run_dir), {}
    if last is None and experiment.mnr:
        pairs = mnr_positive_pairs(examples)
        notes["mnr_loss"] = mnr_pretrain(
            model, make_optimizer(model, lr), TaskDataset(pairs, tokenizer, "bi", budget.max_length),
            [mnr_batches(pairs, budget.batch_size, settings.seed + p) for p in range(budget.mnr_epochs)],
            device, use_bf16, show_progress)
    if experiment.freeze_last is not None:
        freeze_all_but_last(model, experiment.freeze_last)
    optimizer = make_optimizer(model, lr, experiment.layerwise_lr_decay, experiment.head_lr_scale)
    learner = Learner(model, distributed.wrap(StepLoss(model, experiment, weights), device),  # after freezing
                      optimizer, make_lr_schedule(optimizer, experiment.lr_schedule, total_steps),
                      {task: datasets[task]["train"] for task in streams}, device, use_bf16)
    progress = Progress(history)
    if last is not None:
        progress = resume(learner, streams, last, history, steps)
        print(f"resuming {run_dir} from step {progress.step} (epoch {progress.epoch + 1}, step "
              f"{progress.step - progress.epoch * steps} of {steps})")

    def score(split: str) -> dict:  # the scores on the split's fixed sample
        return score_split(model, datasets, split, budget.batch_size, device, use_bf16, samples[split])["scores"]

    done = train_epochs(learner, streams, schedule, progress, run_dir, score, epochs, eval_every,
                        settings.stop_after_epochs, show_progress, notes)
    if done and main:
        write_best_predictions(run_dir, model, datasets, budget, device, use_bf16, totals)
        if settings.plots:
            from minbert_lib.plots import plot_run  # matplotlib: imported only when drawing

            plot_run(run_dir)
        if not settings.keep_last:
            (run_dir / LAST).unlink(missing_ok=True)  # 271 MB for MiniLM; --keep-last keeps it
        # wall time of this call, from start to the last prediction file (of the last part, if resumed)
        (run_dir / "minutes.txt").write_text(f"{(time.perf_counter() - started) / 60:.2f}\n")
    distributed.barrier()
    distributed.teardown()
    return run_dir
