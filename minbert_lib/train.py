"""The multitask training loop: data, optimizer, epochs, evaluation, checkpoints, resume, history.

    run_dir = train(TrainSettings(experiment="M7", preset="cpu"))

A run folder holds:
    settings.json            what was trained (experiment, preset, seed, model)
    history.json             "epochs": per epoch, train losses, train-sample and dev(-sample) metrics;
                             "evals": dev(-sample) metrics every `eval_every` steps and at each epoch's end, with
                             the mean train losses since the previous point; "floors": the majority-class scores
                             of that dev (sample); rewritten at every evaluation
    last.pt                  everything needed to resume exactly (model, optimizer, data positions, RNG), written
                             at every evaluation, mid-epoch too; removed when the run finishes unless keep_last
    best.pt, best-config.json  the encoder + heads with the best overall dev score at an epoch's end, as a
                             state_dict + JSON
    <task>-<split>-predictions.csv  dev and test predictions of the best model (`-test-partial-` when the
                             preset cut the test file; partial-predictions.txt says how much they cover)
    confusion.json           dev confusion matrices of the best model (SST 5x5, Quora 2x2)
    learning_curves.png, confusion_matrices.png
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from minbert_lib import distributed
from minbert_lib.batching import BucketBatchSampler, TaskDataset, batch_to
from minbert_lib.config import preset as config_preset
from minbert_lib.data import Example, load_split, split_path
from minbert_lib.errors import ConfigError, MinbertError, TrainingInterrupted
from minbert_lib.evaluate import (MultitaskScores, confusion_matrix, prediction_filename, task_metrics,
                                  write_predictions)
from minbert_lib.experiments import Experiment, Preset, get_experiment, get_preset
from minbert_lib.losses import (TASK_LOSSES, cosent_loss, dataset_share_weights,
                                multiple_negatives_ranking_loss)
from minbert_lib.model import BertModel
from minbert_lib.multitask import MAX_SIMILARITY, MultitaskBert, freeze_all_but_last
from minbert_lib.optim import AdamW
from minbert_lib.schedules import SCHEDULES, TaskStream, schedule_tasks, steps_per_epoch
from minbert_lib.tokenizer import Tokenizer

MIN_CURVE_POINTS = 8  # dev evaluations per run by default
MNR_MIN_STS_SIMILARITY = 4.0  # STS pairs at least this similar count as positives for MNR
GRAD_CLIP_NORM = 1.0
EVAL_TASKS = ("sst", "quora", "sts")


@dataclass
class TrainSettings:
    experiment: str = "best"
    preset: str = "cpu"
    seed: int = 0
    model: str = "minilm-l6"          # a weights preset or folder; "tiny" = a random tiny encoder (tests)
    run_dir: str | None = None        # default: runs/<experiment>-<preset>-seed<seed>
    data_dir: str | None = None
    device: str | None = None         # default: cuda, then mps, then cpu
    bf16: bool | None = None          # None: the preset's choice, where the hardware supports it
    epochs: int | None = None         # override the preset's epochs
    stop_after_epochs: int | None = None  # stop early (to test resuming); the run can be resumed
    progress: bool = True
    eval_every: int | None = None     # steps between dev evaluations and checkpoints (None: 1/8 of the run; 0: per epoch)
    keep_last: bool = False           # keep last.pt once the run has finished (it is removed by default)


# --- hardware -----------------------------------------------------------------

def available_device_types() -> dict[str, bool]:
    """Which of the device types the kit trains on this machine has, in the order they are preferred."""
    return {"cuda": torch.cuda.is_available(),
            "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
            "cpu": True}


def pick_device(requested: str | None = None) -> torch.device:
    """The requested device, checked; else the first available of cuda, mps and cpu."""
    if requested:
        return checked_device(requested)
    return torch.device(next(kind for kind, present in available_device_types().items() if present))


def checked_device(requested: str) -> torch.device:
    """torch.device(requested), or a ConfigError that says why this machine cannot train there."""
    available = available_device_types()
    try:
        device = torch.device(requested)
    except RuntimeError:
        device = None
    if device is None or device.type not in available:
        raise ConfigError(f"--device {requested!r} is not a device the kit trains on: use cuda, cuda:N, mps or cpu")
    if not available[device.type]:
        raise ConfigError(f"--device {requested}: torch finds no {device.type} device on this machine; "
                          "leave --device out to train on the first available one")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                          f"numbered from 0")
    return device


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast pays off on GPUs that support it and on CPUs with AMX or AVX-512 BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return "amx_bf16" in flags or "avx512_bf16" in flags
    return False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- data -------------------------------------------------------------------

def pair_encoding_for(task: str, experiment: Experiment) -> str:
    """Quora goes in one sequence for the cross-encoder head, both ways for cos-cross; every other
    pair head is a bi-encoder."""
    if task != "quora":
        return "bi"
    return {"cross": "cross", "cos-cross": "both"}.get(experiment.heads.paraphrase_head, "bi")


def limited(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """A seeded random subset of at most `limit` examples (all of them without a limit)."""
    if limit is None or limit >= len(examples):
        return examples
    order = np.random.default_rng(seed).permutation(len(examples))[:limit]
    return [examples[i] for i in sorted(order)]


def load_examples(data_dir, preset: Preset, seed: int,
                  totals: dict | None = None) -> dict[str, dict[str, list[Example] | None]]:
    """{task: {"train": [...], "dev": [...], "test": [...] or None}}, cut to the preset's limits; `totals`,
    where given, receives each file's size before the cut as {(task, split): rows}."""
    examples = {}
    for task in EVAL_TASKS:
        splits = {}
        for split, limit in (("train", preset.train_limit), ("dev", preset.dev_limit), ("test", preset.dev_limit)):
            path = split_path(task, split, data_dir)
            if split == "test" and not path.exists():
                print(f"note: {path.name} is missing: no {task} test predictions")
                splits[split] = None
                continue
            rows = load_split(task, split, data_dir)
            if totals is not None:
                totals[(task, split)] = len(rows)
            splits[split] = limited(rows, limit, seed)
        examples[task] = splits
    return examples


def build_datasets(examples: dict, experiment: Experiment, preset: Preset, tokenizer: Tokenizer) -> dict:
    """The same layout as `examples`, each split tokenized once into a TaskDataset."""
    return {task: {split: None if rows is None else
                   TaskDataset(rows, tokenizer, pair_encoding_for(task, experiment), preset.max_length)
                   for split, rows in splits.items()}
            for task, splits in examples.items()}


def mnr_positive_pairs(examples: dict) -> list[Example]:
    """Positive pairs for MNR: STS train pairs with similarity >= 4 and Quora train duplicates."""
    sts = [e for e in examples["sts"]["train"] if e.label >= MNR_MIN_STS_SIMILARITY]
    quora = [e for e in examples["quora"]["train"] if e.label == 1]
    return sts + quora


def mnr_batches(examples: list[Example], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches in which no sentence occurs twice (a repeat would be a false negative)."""
    order = np.random.default_rng(seed).permutation(len(examples)).tolist()
    batches, pending = [], order
    while pending:
        batch, seen, deferred = [], set(), []
        for index in pending:
            texts = {examples[index].text.lower().strip(), examples[index].text_b.lower().strip()}
            if len(batch) < batch_size and not texts & seen:
                batch.append(index)
                seen |= texts
            else:
                deferred.append(index)
        batches.append(batch)
        pending = deferred
    return [b for b in batches if len(b) > 1]  # one pair alone has no in-batch negative


# --- model and optimizer --------------------------------------------------------

def build_model(settings: TrainSettings, experiment: Experiment, preset: Preset, tokenizer: Tokenizer) -> MultitaskBert:
    overrides = {}
    if preset.dropout is not None:
        overrides["hidden_dropout"] = preset.dropout
    if settings.model == "tiny":
        # 6 layers like MiniLM, so that FL2 and FL4 mean the same; hidden 32 keeps it fast
        encoder = BertModel(config_preset("tiny", vocab_size=tokenizer.vocab_size, num_layers=6,
                                          max_position_embeddings=512, **overrides))
    else:
        encoder = BertModel.from_pretrained(settings.model, **overrides)
    heads = experiment.heads
    if preset.dropout is not None:
        heads = dataclasses.replace(heads, dropout=preset.dropout)
    return MultitaskBert(encoder, heads)


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


LR_SCHEDULES = ("constant", "linear")
WARMUP_FRACTION = 0.1


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


# --- one step, and evaluation ---------------------------------------------------

def paraphrase_logits(model: MultitaskBert, batch: dict) -> torch.Tensor:
    """Bi-encoded batches carry the two questions apart ("a", "b"), cross-encoded ones as one
    sequence, and "both" batches the two, the sequence in "pair"."""
    if "a" in batch:
        return model.paraphrase_logits(batch["a"], batch["b"], batch.get("pair"))
    return model.paraphrase_logits(pair=batch)


def task_loss(model: MultitaskBert, task: str, batch: dict, experiment: Experiment) -> torch.Tensor:
    """The loss of one task on one batch (heads return logits or raw scores; see losses.py)."""
    labels = batch["labels"]
    if task == "sst":
        return TASK_LOSSES["sst"](model.sentiment_logits(batch), labels)
    if task == "quora":
        return TASK_LOSSES["quora"](paraphrase_logits(model, batch), labels)
    scores = model.similarity_scores(batch["a"], batch["b"])
    if experiment.similarity_loss == "cosent":
        # CoSENT's scale of 20 is meant for cosines; COS-S scores are 5 * cos, so bring them back to cos
        return cosent_loss(scores / MAX_SIMILARITY, labels)
    return TASK_LOSSES["sts"](scores, labels)


class StepLoss(torch.nn.Module):
    """One optimisation step's loss as a module, so that DistributedDataParallel can wrap it.

    forward({task: batch}) -> (weighted total, {task: loss}); the task "mnr" is the
    multiple-negatives ranking loss on a batch of positive pairs.
    """

    def __init__(self, model: MultitaskBert, experiment: Experiment | None = None,
                 weights: dict[str, float] | None = None):
        super().__init__()
        self.model = model
        self.experiment = experiment
        self.weights = weights or {}

    def forward(self, batches: dict[str, dict]):
        losses = {}
        for task, batch in batches.items():
            if task == "mnr":
                losses[task] = multiple_negatives_ranking_loss(*self.model.embed_pair(batch["a"], batch["b"]))
            else:
                losses[task] = task_loss(self.model, task, batch, self.experiment)
        total = sum(self.weights.get(task, 1.0) * loss for task, loss in losses.items())
        return total, losses


def optimisation_step(step_loss: torch.nn.Module, optimizer, parameters, batches: dict, device,
                      use_bf16: bool) -> dict[str, float]:
    """Forward, backward, clip, update; returns each task's loss."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        total, losses = step_loss({task: batch_to(batch, device) for task, batch in batches.items()})
    total.backward()
    torch.nn.utils.clip_grad_norm_(parameters, GRAD_CLIP_NORM)
    optimizer.step()
    return {task: loss.item() for task, loss in losses.items()}


def collate_shard(dataset: TaskDataset, indices: list[int]) -> dict:
    """This process's part of a batch, collated."""
    return dataset.collate([dataset[i] for i in distributed.shard(indices)])


def predict_batch(model: MultitaskBert, task: str, batch: dict) -> torch.Tensor:
    """Predictions as the data's label type: SST class, Quora 0/1, STS score in [0, 5]."""
    if task == "sst":
        return model.sentiment_logits(batch).argmax(-1)
    if task == "quora":
        return (paraphrase_logits(model, batch) > 0).long()  # sigmoid(logit) > 0.5
    return model.similarity_scores(batch["a"], batch["b"]).float().clamp(0.0, 5.0)


@torch.no_grad()
def predict(model: MultitaskBert, task: str, dataset: TaskDataset, batch_size: int, device, use_bf16: bool,
            indices: list[int] | None = None) -> tuple[list[str], list]:
    """(ids, predictions) for the dataset (or the given indices), in length-sorted batches."""
    model.eval()
    indices = list(range(len(dataset))) if indices is None else indices
    indices = sorted(indices, key=lambda i: dataset.lengths[i])  # little padding
    ids, predictions = [], []
    for start in range(0, len(indices), batch_size * 2):
        batch = dataset.collate([dataset[i] for i in indices[start:start + batch_size * 2]])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            predictions += predict_batch(model, task, batch_to(batch, device)).cpu().tolist()
        ids += batch["ids"]
    return ids, predictions


def evaluate(model, datasets: dict, split: str, batch_size: int, device, use_bf16: bool,
             sample: dict[str, list[int]] | None = None) -> dict:
    """Metrics of every task on a split (or on fixed samples of it), the overall scores,
    confusion matrices, and the predictions themselves ({task: (ids, predictions)})."""
    metrics, confusions, predictions = {}, {}, {}
    for task in EVAL_TASKS:
        dataset = datasets[task][split]
        indices = sample[task] if sample else None
        ids, predicted = predict(model, task, dataset, batch_size, device, use_bf16, indices)
        predictions[task] = (ids, predicted)
        gold_by_id = dict(zip(dataset.ids, dataset.labels))
        gold = [gold_by_id[i] for i in ids]
        metrics[task] = task_metrics(task, gold, predicted)
        if task != "sts":
            confusions[task] = confusion_matrix(gold, predicted, 5 if task == "sst" else 2).tolist()
    scores = MultitaskScores(metrics["sst"]["accuracy"], metrics["sst"]["macro_f1"],
                             metrics["quora"]["accuracy"], metrics["sts"]["pearson"])
    return {"scores": scores.as_dict(), "confusion": confusions, "predictions": predictions}


def fixed_sample(datasets: dict, split: str, size: int | None, seed: int) -> dict[str, list[int]] | None:
    """Sorted indices of a seeded random sample of `size` examples of each task (None: all of them)."""
    if size is None:
        return None
    rng = np.random.default_rng(seed)
    return {t: sorted(rng.permutation(len(datasets[t][split]))[:size].tolist()) for t in EVAL_TASKS}


# --- the run folder ---------------------------------------------------------------

def write_json(path: Path, value) -> None:
    """Write JSON atomically: a killed run never leaves half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def save_checkpoint(path: Path, state: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def default_run_dir(settings: TrainSettings) -> Path:
    return Path("runs") / f"{settings.experiment}-{settings.preset}-seed{settings.seed}"


# --- the loop -----------------------------------------------------------------------

def mnr_pretrain(model, pairs: list[Example], settings, preset, lr: float, tokenizer, device, use_bf16) -> float:
    """preset.mnr_epochs passes of MNR over positive pairs at learning rate lr; returns the mean loss."""
    dataset = TaskDataset(pairs, tokenizer, pair_encoding="bi", max_length=preset.max_length)
    step_loss = distributed.wrap(StepLoss(model), device)
    optimizer = make_optimizer(model, lr)
    model.train()
    losses = []
    for epoch in range(preset.mnr_epochs):
        batches = mnr_batches(pairs, preset.batch_size, settings.seed + epoch)
        for indices in tqdm(batches, desc=f"MNR pre-training {epoch + 1}/{preset.mnr_epochs}",
                            disable=not (settings.progress and distributed.is_main_process()), leave=False):
            step = {"mnr": collate_shard(dataset, indices)}
            losses.append(optimisation_step(step_loss, optimizer, model.parameters(), step, device, use_bf16)["mnr"])
    return float(np.mean(losses)) if losses else float("nan")


def epochs_for(settings: TrainSettings, preset: Preset) -> int:
    """--epochs where it was given, else the preset's."""
    if settings.epochs is None:
        return preset.epochs
    if settings.epochs < 1:
        raise ConfigError(f"--epochs {settings.epochs}: a run trains at least 1 epoch")
    return settings.epochs


def run_definition(settings: TrainSettings) -> dict:
    """What decides a run's result, as settings.json stores it: compared before resuming or reusing a run."""
    preset = get_preset(settings.preset)
    definition = {"experiment": get_experiment(settings.experiment).to_dict(),
                  "preset": dataclasses.asdict(preset), "epochs": epochs_for(settings, preset),
                  "model": settings.model, "seed": settings.seed}
    return json.loads(json.dumps(definition))  # tuples become lists, as in the file


def field_defaults(kind) -> dict:
    """A dataclass's fields that have defaults: a field the kit gained after a run was saved takes its
    default there, which is what the kit did before the field existed."""
    return {f.name: f.default for f in dataclasses.fields(kind) if f.default is not dataclasses.MISSING}


def changed_since(run_dir: Path, settings: TrainSettings) -> list[str]:
    """The parts of the run's definition that differ from the run folder's settings.json (none: same run)."""
    path = Path(run_dir) / "settings.json"
    if not path.exists():
        return []
    saved = json.loads(path.read_text())
    saved.update(model=saved["settings"]["model"], seed=saved["settings"]["seed"])
    for key, kind in (("experiment", Experiment), ("preset", Preset)):
        saved[key] = {**field_defaults(kind), **saved.get(key, {})}
    return [key for key, value in run_definition(settings).items() if saved.get(key) != value]


def eval_interval(settings: TrainSettings, total_steps: int) -> int:
    """Steps between dev evaluations (and checkpoints) within an epoch: --eval-every, else an eighth of the
    run's steps, so that every run has at least 8 points per curve; 0 means at the end of each epoch only."""
    if settings.eval_every is None:
        return max(1, total_steps // MIN_CURVE_POINTS)
    return settings.eval_every or total_steps + 1


def majority_floors(datasets: dict, dev_sample: dict | None) -> dict[str, float]:
    """What predicting a constant scores on the dev (sample) the curves use: the most frequent class's share
    for SST and Quora; Pearson 0 for STS (a constant has no correlation)."""
    floors = {"sts_pearson": 0.0}
    for task in ("sst", "quora"):
        labels = datasets[task]["dev"].labels
        if dev_sample:
            labels = [labels[i] for i in dev_sample[task]]
        floors[f"{task}_accuracy"] = max(Counter(labels).values()) / len(labels)
    return floors


def new_history(datasets: dict, dev_sample: dict | None, steps: int, batch_size: int, eval_every: int) -> dict:
    """history.json: per-epoch records ("epochs"), dev scores every eval_every steps and at each epoch's end
    ("evals"), and the majority floors of the dev (sample) they are measured on."""
    return {"format": 2, "steps_per_epoch": steps, "batch_size": batch_size, "eval_every": eval_every,
            "floors": majority_floors(datasets, dev_sample), "epochs": [], "evals": []}


def eval_record(step: int, steps_per_epoch_: int, loss_sums: dict, steps_since: int, scores: dict) -> dict:
    """One point of the curves: the dev (sample) scores after `step` optimizer steps, and each task's mean
    training loss over the steps since the previous point."""
    return {"step": step, "epoch": round(step / steps_per_epoch_, 4), "dev": scores,
            "train_loss": {t: v / max(steps_since, 1) for t, v in loss_sums.items()}}


def load_history(run_dir: Path) -> dict:
    """A run's history.json; histories of older kits (a list of epoch records) come back as
    {"epochs": [...], "evals": []}."""
    history = json.loads((Path(run_dir) / "history.json").read_text(encoding="utf-8"))
    return {"epochs": history, "evals": []} if isinstance(history, list) else history


def train(settings: TrainSettings) -> Path:
    """Train one experiment with one preset; resume from `last.pt` when the run folder has one."""
    started = time.perf_counter()
    experiment, preset = get_experiment(settings.experiment), get_preset(settings.preset)
    epochs, device = epochs_for(settings, preset), pick_device(settings.device)  # checked before anything is written
    if settings.seed < 0:
        raise ConfigError(f"--seed {settings.seed}: seeds are whole numbers from 0")
    if settings.eval_every is not None and settings.eval_every < 0:
        raise ConfigError(f"--eval-every {settings.eval_every}: give a number of steps (0: at each epoch's end only)")
    run_dir = Path(settings.run_dir) if settings.run_dir else default_run_dir(settings)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is a file: give a folder (new or holding a run) for the run")
    changed = changed_since(run_dir, settings)
    if changed and ((run_dir / "last.pt").exists() or (run_dir / "best-dev-scores.json").exists()):
        raise ConfigError(f"{run_dir} holds a run whose {', '.join(changed)} differ from this one: resume it "
                          "with the settings it started with, or give another --run-dir")
    if not changed and finished(run_dir, epochs):
        print(f"{run_dir} holds this run, finished: nothing to train (give another --run-dir to train it again)")
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    device = distributed.setup(device)
    want_bf16 = preset.bf16 if settings.bf16 is None else settings.bf16
    use_bf16 = want_bf16 and bf16_supported(device)
    lr = preset.lr * experiment.lr_scale
    if distributed.is_main_process():
        write_json(run_dir / "settings.json", {
            "settings": dataclasses.asdict(settings), "experiment": experiment.to_dict(),
            "preset": dataclasses.asdict(preset), "device": str(device), "bf16": use_bf16, "epochs": epochs,
            "processes": distributed.world_size(),
        })

    seed_everything(settings.seed)
    tokenizer = Tokenizer.from_pretrained("minilm-l6" if settings.model == "tiny" else settings.model)
    totals = {}
    examples = load_examples(settings.data_dir, preset, settings.seed, totals)
    datasets = build_datasets(examples, experiment, preset, tokenizer)
    model = build_model(settings, experiment, preset, tokenizer).to(device)
    tasks = schedule_tasks(experiment.schedule)
    streams = {task: TaskStream(BucketBatchSampler(datasets[task]["train"].lengths, preset.batch_size,
                                                   seed=settings.seed).batches)
               for task in tasks}
    weights = (dataset_share_weights({t: len(datasets[t]["train"]) for t in tasks}) if experiment.reweight
               else {t: 1.0 for t in tasks})
    train_sample = fixed_sample(datasets, "train", preset.train_eval_sample, settings.seed)
    dev_sample = fixed_sample(datasets, "dev", preset.epoch_dev_sample, settings.seed)

    checkpoint_path = run_dir / "last.pt"
    steps = steps_per_epoch(experiment.schedule, streams)
    total_steps = epochs * steps
    eval_every = eval_interval(settings, total_steps)
    history = new_history(datasets, dev_sample, steps, preset.batch_size, eval_every)
    best_score, start_epoch, start_step, mnr_loss, resumed = -float("inf"), 0, 0, None, None
    if checkpoint_path.exists():
        resumed = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if experiment.freeze_last is not None:
            freeze_all_but_last(model, experiment.freeze_last)
        model.load_state_dict(resumed["model"])
        optimizer = make_optimizer(model, lr, experiment.layerwise_lr_decay, experiment.head_lr_scale)
        lr_schedule = make_lr_schedule(optimizer, experiment.lr_schedule, total_steps)
        optimizer.load_state_dict(resumed["optimizer"])  # after the schedule is made: it restores the saved rates
        if "lr_schedule" in resumed:  # checkpoints of older kits have none: they kept constant rates
            lr_schedule.load_state_dict(resumed["lr_schedule"])
        # mid-epoch checkpoints hold the streams as the epoch began, and replay the epoch's first steps
        for task, stream in streams.items():
            stream.load_state_dict(resumed.get("epoch_streams", resumed["streams"])[task])
        torch.set_rng_state(resumed["torch_rng"])
        saved = resumed["history"]
        history = saved if isinstance(saved, dict) else {**history, "epochs": saved}
        best_score, start_epoch = resumed["best_score"], resumed["epoch"]
        start_step = resumed.get("step", start_epoch * steps)
        print(f"resuming {run_dir} from step {start_step} (epoch {start_epoch + 1}, step "
              f"{start_step - start_epoch * steps} of {steps})")
    else:
        if experiment.mnr:
            mnr_loss = mnr_pretrain(model, mnr_positive_pairs(examples), settings, preset, lr, tokenizer, device, use_bf16)
        if experiment.freeze_last is not None:
            freeze_all_but_last(model, experiment.freeze_last)
        optimizer = make_optimizer(model, lr, experiment.layerwise_lr_decay, experiment.head_lr_scale)
        lr_schedule = make_lr_schedule(optimizer, experiment.lr_schedule, total_steps)
    trainable = [p for p in model.parameters() if p.requires_grad]
    step_loss = distributed.wrap(StepLoss(model, experiment, weights), device)  # after freezing
    show_progress = settings.progress and distributed.is_main_process()
    main = distributed.is_main_process()

    def checkpoint(epoch_done: int, step: int, epoch_streams: dict | None = None, epoch_state: dict | None = None):
        """last.pt: everything needed to go on after `step` optimizer steps (mid-epoch: with the streams as the
        epoch began, and the epoch's loss sums and seconds so far)."""
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "lr_schedule": lr_schedule.state_dict(), "streams": {t: s.state_dict() for t, s in streams.items()},
                 "torch_rng": torch.get_rng_state(), "history": history, "best_score": best_score,
                 "epoch": epoch_done, "step": step}
        if epoch_streams is not None:
            state.update(epoch_streams=epoch_streams, epoch_state=epoch_state)
        save_checkpoint(checkpoint_path, state)

    stop_at = min(epochs, start_epoch + settings.stop_after_epochs) if settings.stop_after_epochs else epochs
    step, saved_step, last_eval = start_step, start_step, start_step
    try:
        for epoch in range(start_epoch, stop_at):
            epoch_started = time.perf_counter()
            model.train()
            epoch_streams = {t: s.state_dict() for t, s in streams.items()}
            sums = {t: 0.0 for t in tasks}
            interval = {t: 0.0 for t in tasks}
            done_in_epoch, seconds_before = 0, 0.0
            plan = SCHEDULES[experiment.schedule](streams)
            if resumed is not None and "epoch_state" in resumed and resumed["epoch"] == epoch:
                done_in_epoch = resumed["epoch_state"]["steps"]
                sums, seconds_before = dict(resumed["epoch_state"]["sums"]), resumed["epoch_state"]["seconds"]
                for _ in range(done_in_epoch):  # the batches the epoch already trained on
                    next(plan)
            resumed = None
            bar = tqdm(plan, total=steps, initial=done_in_epoch, desc=f"epoch {epoch + 1}/{epochs}",
                       disable=not show_progress, leave=False)
            for step_number, batch_plan in enumerate(bar, start=done_in_epoch + 1):
                batches = {task: collate_shard(datasets[task]["train"], indices) for task, indices in batch_plan.items()}
                losses = optimisation_step(step_loss, optimizer, trainable, batches, device, use_bf16)
                lr_schedule.step()
                step += 1
                for task, value in losses.items():
                    sums[task] += value
                    interval[task] += value
                bar.set_postfix({t: f"{sums[t] / step_number:.3f}" for t in tasks})  # running mean losses
                if step % eval_every == 0 and step_number < steps:  # the epoch's last step is scored below
                    if main:
                        dev = evaluate(model, datasets, "dev", preset.batch_size, device, use_bf16, dev_sample)
                        history["evals"].append(eval_record(step, steps, interval, step - last_eval, dev["scores"]))
                        write_json(run_dir / "history.json", history)
                        checkpoint(epoch, step, epoch_streams, {"steps": step_number, "sums": sums, "seconds":
                                                                seconds_before + time.perf_counter() - epoch_started})
                        saved_step = step
                        model.train()
                    interval, last_eval = {t: 0.0 for t in tasks}, step
                    distributed.barrier()

            if not main:
                distributed.barrier()  # process 0 evaluates and writes the run folder
                continue
            dev = evaluate(model, datasets, "dev", preset.batch_size, device, use_bf16, dev_sample)
            train_eval = evaluate(model, datasets, "train", preset.batch_size, device, use_bf16, train_sample)
            record = {"epoch": epoch + 1, "step": step, "train_loss": {t: sums[t] / max(steps, 1) for t in tasks},
                      "train": train_eval["scores"], "dev": dev["scores"],
                      "seconds": seconds_before + time.perf_counter() - epoch_started}
            if mnr_loss is not None and epoch == 0:
                record["mnr_loss"] = mnr_loss
            history["epochs"].append(record)
            history["evals"].append(eval_record(step, steps, interval, step - last_eval, dev["scores"]))
            last_eval = step
            write_json(run_dir / "history.json", history)
            score = dev["scores"]["mean_score"]
            if score > best_score:
                best_score = score
                save_checkpoint(run_dir / "best.pt", {"model": model.state_dict()})
                write_json(run_dir / "best-config.json", {"encoder": model.encoder.config.to_dict(),
                                                          "heads": model.heads.to_dict(), "epoch": epoch + 1})
            checkpoint(epoch + 1, step)
            saved_step = step
            distributed.barrier()
            print(f"epoch {epoch + 1}: dev SST {dev['scores']['sst_accuracy']:.3f}, Quora "
                  f"{dev['scores']['quora_accuracy']:.3f}, STS {dev['scores']['sts_pearson']:.3f} "
                  f"({record['seconds']:.0f} s)")
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"interrupted at step {step}; run the same command again to resume from step "
                                  f"{saved_step}") from None

    if stop_at == epochs and main:
        finish(run_dir, model, datasets, preset, device, use_bf16, totals)
        if not settings.keep_last:
            checkpoint_path.unlink(missing_ok=True)  # 271 MB for MiniLM; --keep-last keeps it
        # wall time of this call, from start to the last prediction file (of the last part, if resumed)
        (run_dir / "minutes.txt").write_text(f"{(time.perf_counter() - started) / 60:.2f}\n")
    distributed.barrier()
    distributed.teardown()
    return run_dir


PARTIAL_NOTE = "partial-predictions.txt"


def finish(run_dir: Path, model, datasets, preset: Preset, device, use_bf16: bool, totals: dict | None = None) -> None:
    """Reload the best model; score it on all of dev; write predictions, confusion matrices and plots.
    Test predictions of a preset that cuts the test files (quick) are named `<task>-test-partial-predictions.csv`,
    and `partial-predictions.txt` says how much of each file they cover."""
    from minbert_lib.plots import plot_run

    state = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    dev = evaluate(model, datasets, "dev", preset.batch_size, device, use_bf16)
    notes = []
    for task in EVAL_TASKS:
        write_predictions(run_dir / prediction_filename(task, "dev"), *dev["predictions"][task])
        test = datasets[task]["test"]
        if test is not None:
            total = (totals or {}).get((task, "test"), len(test))
            ids, predictions = predict(model, task, test, preset.batch_size, device, use_bf16)
            name = prediction_filename(task, "test", partial=len(test) < total)
            write_predictions(run_dir / name, ids, predictions)
            if len(test) < total:
                notes.append(f"{name}: {len(test):,} of the {total:,} examples of {task}-test (the {preset.name} "
                             f"preset's limit; {prediction_filename(task, 'dev')} covers {len(datasets[task]['dev']):,} "
                             f"of {(totals or {}).get((task, 'dev'), 0):,} dev examples)")
    if notes:
        (run_dir / PARTIAL_NOTE).write_text(
            "These prediction files cover part of their split only: not for submission. Train with the cpu or "
            "paper preset for complete files.\n" + "\n".join(notes) + "\n", encoding="utf-8")
    write_json(run_dir / "confusion.json", dev["confusion"])
    write_json(run_dir / "best-dev-scores.json", dev["scores"])
    plot_run(run_dir)


def finished(run_dir: Path, epochs: int) -> bool:
    """Whether the run folder holds all `epochs` epochs and the final scoring on all of dev."""
    return ((run_dir / "best-dev-scores.json").exists() and (run_dir / "history.json").exists()
            and len(load_history(run_dir)["epochs"]) >= epochs)


def load_minutes(run_dir: Path) -> float | None:
    """The wall time train() wrote for a finished run (None for runs of older kits)."""
    path = Path(run_dir) / "minutes.txt"
    return float(path.read_text()) if path.exists() else None


def load_best_scores(run_dir: Path) -> dict:
    path = Path(run_dir) / "best-dev-scores.json"
    if not path.exists():
        raise MinbertError(f"{path} does not exist: the run in {run_dir} has not finished")
    return json.loads(path.read_text())
