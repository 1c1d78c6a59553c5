"""A run folder: what it holds, writing it safely, and reading it back.

    runs/M7-cpu-seed0/
    settings.json            what was trained (experiment, budget, seed, model)
    history.json             "epochs": per epoch, train losses, train-sample and dev(-sample) metrics;
                             "evals": dev(-sample) metrics every `eval_every` steps and at each epoch's end, with
                             the mean train losses since the previous point; "floors": the majority-class scores
                             of that dev (sample); rewritten at every evaluation
    last.pt                  everything needed to resume exactly (model, optimizer, data positions, RNG), written
                             at every evaluation, mid-epoch too; removed when the run finishes unless keep_last
    best.pt, best-config.json  the encoder + heads with the best overall dev score at an epoch's end, as a
                             state_dict + JSON
    <task>-<split>-predictions.csv  dev and test predictions of the best model (predictions.py)
    best-dev-scores.json     the best model's scores on all of dev: written last, so it marks a finished run
    confusion.json, learning_curves.png, confusion_matrices.png
    minutes.txt              the wall time of the run
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch

from minbert_lib.errors import MinbertError
from minbert_lib.experiments import Budget, Experiment
from minbert_lib.overrides import folder_suffix
from minbert_lib.tasks import get_task

LAST = "last.pt"


def write_json(path: Path, value) -> None:
    """Write JSON atomically: a killed run never leaves half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save, atomically like write_json."""
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_last(run_dir: Path) -> dict | None:
    """The run's resume checkpoint (last.pt), None when it has none."""
    path = Path(run_dir) / LAST
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def save_best(run_dir: Path, model, epoch: int) -> None:
    """best.pt (the model's state_dict) and best-config.json (how to build it again)."""
    save_checkpoint(run_dir / "best.pt", {"model": model.state_dict()})
    write_json(run_dir / "best-config.json", {"encoder": model.encoder.config.to_dict(),
                                              "heads": model.heads.to_dict(), "epoch": epoch})


def default_run_dir(settings) -> Path:
    """runs/<experiment>-<budget>-seed<seed>, for a TrainSettings; each --set key=value adds -key=value."""
    return Path("runs") / f"{settings.experiment}-{settings.budget}-seed{settings.seed}{folder_suffix(settings.overrides)}"


# --- is it the same run? has it finished? ------------------------------------------

def run_definition(experiment: Experiment, budget: Budget, epochs: int, model: str, seed: int,
                   eval_every: int | None, bf16: bool | None) -> dict:
    """What decides a run's result, as settings.json stores it: compared before resuming or reusing a run.
    `eval_every` and `bf16` are TrainSettings' (--eval-every, --no-bf16): eval_every as given (None: an eighth
    of the run's steps, which the rest of the definition fixes); "bf16" what the run asks for (requested_bf16),
    not what the hardware allowed, so a run can still resume on another machine."""
    definition = {"experiment": experiment.to_dict(), "budget": dataclasses.asdict(budget), "epochs": epochs,
                  "model": model, "seed": seed, "eval_every": eval_every,
                  "bf16": requested_bf16(bf16, budget.bf16)}
    return json.loads(json.dumps(definition))  # tuples become lists, as in the file


def requested_bf16(flag: bool | None, budget_bf16: bool) -> bool:
    """Whether a run asks for bf16 autocast: TrainSettings.bf16 (--no-bf16) where given, else the budget's."""
    return budget_bf16 if flag is None else flag


def field_defaults(kind) -> dict:
    """A dataclass's fields that have defaults: a field the kit gained after a run was saved takes its
    default there, which is what the kit did before the field existed."""
    return {f.name: f.default for f in dataclasses.fields(kind) if f.default is not dataclasses.MISSING}


def read_settings(run_dir: Path) -> dict:
    """A run folder's settings.json. Kits until 2026-12-03 called the budget a "preset": read as "budget"."""
    saved = json.loads((Path(run_dir) / "settings.json").read_text())
    if "preset" in saved:
        saved["budget"] = saved.pop("preset")
    if "preset" in saved.get("settings", {}):
        saved["settings"]["budget"] = saved["settings"].pop("preset")
    return saved


def changed_since(run_dir: Path, definition: dict) -> list[str]:
    """The parts of a run_definition that differ from the run folder's settings.json (none: same run)."""
    if not (Path(run_dir) / "settings.json").exists():
        return []
    saved = read_settings(run_dir)
    recorded = saved["settings"]
    saved.update(model=recorded["model"], seed=recorded["seed"])
    for key, kind in (("experiment", Experiment), ("budget", Budget)):
        saved[key] = {**field_defaults(kind), **saved.get(key, {})}
    saved["eval_every"] = recorded.get("eval_every")
    saved["bf16"] = requested_bf16(recorded.get("bf16"), saved["budget"]["bf16"])  # the file's "bf16": what ran
    not_recorded = {key for key in ("eval_every", "bf16") if key not in recorded}  # older kits: not compared
    return [key for key, value in definition.items() if key not in not_recorded and saved.get(key) != value]


def finished(run_dir: Path, epochs: int) -> bool:
    """Whether the run folder holds all `epochs` epochs and the final scoring on all of dev."""
    return ((run_dir / "best-dev-scores.json").exists() and (run_dir / "history.json").exists()
            and len(load_history(run_dir)["epochs"]) >= epochs)


def load_minutes(run_dir: Path) -> float | None:
    """The wall time train() wrote for a finished run (None for runs of older kits)."""
    path = Path(run_dir) / "minutes.txt"
    return float(path.read_text()) if path.exists() else None


def load_best_scores(run_dir: Path) -> dict:
    """best-dev-scores.json of a finished run."""
    path = Path(run_dir) / "best-dev-scores.json"
    if not path.exists():
        raise MinbertError(f"{path} does not exist: the run in {run_dir} has not finished")
    return json.loads(path.read_text())


# --- history.json ------------------------------------------------------------------

def majority_floors(datasets: dict, dev_sample: dict | None) -> dict[str, float]:
    """What predicting a constant scores on the dev (sample) the curves use, by each task's first metric:
    the most frequent class's share for SST and Quora; Pearson 0 for STS (a constant has no correlation)."""
    floors = {}
    for task in datasets:
        labels = datasets[task]["dev"].labels
        if dev_sample:
            labels = [labels[i] for i in dev_sample[task]]
        floors[get_task(task).metric_key] = get_task(task).floor(labels)
    return floors


def new_history(datasets: dict, dev_sample: dict | None, steps: int, batch_size: int, eval_every: int) -> dict:
    """history.json: per-epoch records ("epochs"), dev scores every eval_every steps and at each epoch's end
    ("evals"), and the majority floors of the dev (sample) they are measured on."""
    return {"format": 2, "steps_per_epoch": steps, "batch_size": batch_size, "eval_every": eval_every,
            "floors": majority_floors(datasets, dev_sample), "epochs": [], "evals": []}


def eval_record(step: int, steps_per_epoch: int, loss_sums: dict, steps_since: int, scores: dict) -> dict:
    """One point of the curves: the dev (sample) scores after `step` optimizer steps, and each task's mean
    training loss over the steps since the previous point."""
    return {"step": step, "epoch": round(step / steps_per_epoch, 4), "dev": scores,
            "train_loss": {t: v / max(steps_since, 1) for t, v in loss_sums.items()}}


def load_history(run_dir: Path) -> dict:
    """A run's history.json; histories of older kits (a list of epoch records) come back as
    {"epochs": [...], "evals": []}."""
    history = json.loads((Path(run_dir) / "history.json").read_text(encoding="utf-8"))
    return {"epochs": history, "evals": []} if isinstance(history, list) else history
