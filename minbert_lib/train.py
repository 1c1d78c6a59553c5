"""The training loop: optimizer steps over a schedule's batches, evaluations, checkpoints, exact resume.

    learner = Learner(model, StepLoss(model, experiment), optimizer, lr_schedule, train_sets, device, use_bf16)
    progress = Progress(history)     # a new run; resume(learner, streams, last.pt's state, ...) goes on with one
    done = train_epochs(learner, streams, schedule, progress, run_dir, score, epochs=2, eval_every=6)

The loop takes objects, not names: build.py makes them from a TrainSettings (that is what `minbert train`
does), and a script can hand it its own, e.g. another Schedule (results/data_curve.py). What the run
folder holds is in runs.py; the final predictions are in predictions.py.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from minbert_lib import distributed
from minbert_lib.batching import TaskDataset, batch_to
from minbert_lib.errors import TrainingInterrupted
from minbert_lib.experiments import Experiment
from minbert_lib.losses import cosent_loss, multiple_negatives_ranking_loss
from minbert_lib.multitask import MAX_SIMILARITY, MultitaskBert
from minbert_lib.runs import LAST, eval_record, save_best, save_checkpoint, write_json
from minbert_lib.schedules import Schedule, Step, TaskStream
from minbert_lib.tasks import get_task

GRAD_CLIP_NORM = 1.0


# --- one step ---------------------------------------------------------------------

def batch_loss(model: MultitaskBert, task: str, batch: dict, experiment: Experiment) -> torch.Tensor:
    """The model's loss on one task's batch: its head's outputs, then the task's loss (tasks.TASKS)."""
    definition = get_task(task)
    outputs = model.task_outputs(definition, batch)
    if definition.head == "similarity" and experiment is not None and experiment.similarity_loss == "cosent":
        # CoSENT's scale of 20 is meant for cosines; COS-S scores are 5 * cos, so bring them back to cos
        return cosent_loss(outputs / MAX_SIMILARITY, batch["labels"])
    return definition.loss(outputs, batch["labels"])


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
                losses[task] = batch_loss(self.model, task, batch, self.experiment)
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


@dataclass
class Learner:
    """What an optimizer step needs."""
    model: MultitaskBert
    step_loss: torch.nn.Module                 # {task: batch} -> (weighted total, {task: loss}), e.g. StepLoss
    optimizer: torch.optim.Optimizer
    lr_schedule: torch.optim.lr_scheduler.LRScheduler  # stepped once per optimizer step
    train_sets: dict[str, TaskDataset]         # what a step's example indices point into, per task
    device: torch.device
    use_bf16: bool
    trainable: list = field(init=False)        # the parameters that train (make the Learner after freezing)

    def __post_init__(self):
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]


def train_step(learner: Learner, step: Step) -> dict[str, float]:
    """One optimizer step on the batches `step` names ({task: example indices}); returns each task's loss."""
    batches = {task: collate_shard(learner.train_sets[task], indices) for task, indices in step.items()}
    losses = optimisation_step(learner.step_loss, learner.optimizer, learner.trainable, batches, learner.device,
                               learner.use_bf16)
    learner.lr_schedule.step()
    return losses


def mnr_pretrain(model: MultitaskBert, optimizer, dataset: TaskDataset, passes: list[list[list[int]]], device,
                 use_bf16: bool, show_progress: bool = True) -> float:
    """The MNR pass(es) before fine-tuning: one step per batch of positive pairs; returns the mean loss."""
    step_loss = distributed.wrap(StepLoss(model), device)
    model.train()
    losses = []
    for number, batches in enumerate(passes, start=1):
        for indices in tqdm(batches, desc=f"MNR pre-training {number}/{len(passes)}", disable=not show_progress,
                            leave=False):
            step = {"mnr": collate_shard(dataset, indices)}
            losses.append(optimisation_step(step_loss, optimizer, model.parameters(), step, device, use_bf16)["mnr"])
    return float(np.mean(losses)) if losses else float("nan")


# --- where a run stands: last.pt ---------------------------------------------------------

@dataclass
class Progress:
    """Where a run stands; last.pt saves it with the model, optimizer and data positions."""
    history: dict                       # what history.json holds (runs.new_history)
    best_score: float = -math.inf       # the best dev mean score at an epoch's end so far
    epoch: int = 0                      # epochs finished
    step: int = 0                       # optimizer steps taken
    epoch_state: dict | None = None     # resumed mid-epoch: the epoch's {"steps", "sums", "seconds"} so far


def checkpoint(learner: Learner, streams: dict[str, TaskStream], progress: Progress,
               epoch_streams: dict | None = None, epoch_state: dict | None = None) -> dict:
    """last.pt: everything needed to go on (mid-epoch: with the streams as the epoch began, and the epoch's
    loss sums and seconds so far)."""
    state = {"model": learner.model.state_dict(), "optimizer": learner.optimizer.state_dict(),
             "lr_schedule": learner.lr_schedule.state_dict(),
             "streams": {t: s.state_dict() for t, s in streams.items()}, "torch_rng": torch.get_rng_state(),
             "history": progress.history, "best_score": progress.best_score, "epoch": progress.epoch,
             "step": progress.step}
    if epoch_streams is not None:
        state.update(epoch_streams=epoch_streams, epoch_state=epoch_state)
    return state


def resume(learner: Learner, streams: dict[str, TaskStream], state: dict, history: dict,
           steps_per_epoch: int) -> Progress:
    """Load a checkpoint into the learner (built as for a new run) and the streams; returns its Progress.
    `history` is a new one: checkpoints of older kits saved only its epoch records."""
    learner.model.load_state_dict(state["model"])
    learner.optimizer.load_state_dict(state["optimizer"])  # after the schedule is made: it restores the saved rates
    if "lr_schedule" in state:  # checkpoints of older kits have none: they kept constant rates
        learner.lr_schedule.load_state_dict(state["lr_schedule"])
    # mid-epoch checkpoints hold the streams as the epoch began, and replay the epoch's first steps
    for task, stream in streams.items():
        stream.load_state_dict(state.get("epoch_streams", state["streams"])[task])
    torch.set_rng_state(state["torch_rng"])
    saved, epoch = state["history"], state["epoch"]
    return Progress(saved if isinstance(saved, dict) else {**history, "epochs": saved}, state["best_score"],
                    epoch, state.get("step", epoch * steps_per_epoch), state.get("epoch_state"))


# --- the loop ---------------------------------------------------------------------------

def train_epochs(learner: Learner, streams: dict[str, TaskStream], schedule: Schedule, progress: Progress,
                 run_dir: Path, score: Callable[[str], dict], epochs: int, eval_every: int,
                 stop_after_epochs: int | None = None, show_progress: bool = True,
                 first_epoch_notes: dict | None = None) -> bool:
    """Train on from `progress` up to `epochs` epochs (or `stop_after_epochs` more); returns whether all are done.

    Every `eval_every` steps and at each epoch's end, process 0 scores the model on dev (`score("dev")`, and
    `score("train")` at an epoch's end: {"mean_score": ..., ...}), adds the point to history.json and writes
    last.pt; best.pt where an epoch's dev mean score beats the best so far. `first_epoch_notes` join the first
    epoch's record (the MNR pass's loss)."""
    model, tasks, steps = learner.model, list(streams), schedule.steps_per_epoch(streams)
    main = distributed.is_main_process()
    stop_at = min(epochs, progress.epoch + stop_after_epochs) if stop_after_epochs else epochs
    saved_step = last_eval = progress.step
    try:
        for epoch in range(progress.epoch, stop_at):
            epoch_started = time.perf_counter()
            model.train()
            epoch_streams = {t: s.state_dict() for t, s in streams.items()}
            plan = schedule.epoch(streams)
            done, sums, seconds_before = 0, {t: 0.0 for t in tasks}, 0.0
            if progress.epoch_state is not None:  # resumed in the middle of this epoch
                done, seconds_before = progress.epoch_state["steps"], progress.epoch_state["seconds"]
                sums = dict(progress.epoch_state["sums"])
                for _ in range(done):  # the batches the epoch already trained on
                    next(plan)
                progress.epoch_state = None
            interval = {t: 0.0 for t in tasks}
            bar = tqdm(plan, total=steps, initial=done, desc=f"epoch {epoch + 1}/{epochs}",
                       disable=not show_progress, leave=False)
            for step_number, step in enumerate(bar, start=done + 1):
                losses = train_step(learner, step)
                progress.step += 1
                for task, value in losses.items():
                    sums[task] += value
                    interval[task] += value
                bar.set_postfix({t: f"{sums[t] / step_number:.3f}" for t in tasks})  # running mean losses
                if progress.step % eval_every == 0 and step_number < steps:  # the epoch's last step is scored below
                    if main:
                        progress.history["evals"].append(eval_record(progress.step, steps, interval,
                                                                     progress.step - last_eval, score("dev")))
                        write_json(run_dir / "history.json", progress.history)
                        so_far = {"steps": step_number, "sums": sums,
                                  "seconds": seconds_before + time.perf_counter() - epoch_started}
                        save_checkpoint(run_dir / LAST, checkpoint(learner, streams, progress, epoch_streams, so_far))
                        saved_step = progress.step
                        model.train()
                    interval, last_eval = {t: 0.0 for t in tasks}, progress.step
                    distributed.barrier()

            if not main:
                distributed.barrier()  # process 0 evaluates and writes the run folder
                continue
            dev = score("dev")
            record = {"epoch": epoch + 1, "step": progress.step, "train_loss": {t: sums[t] / max(steps, 1) for t in tasks},
                      "train": score("train"), "dev": dev, "seconds": seconds_before + time.perf_counter() - epoch_started}
            if epoch == 0:
                record.update(first_epoch_notes or {})
            progress.history["epochs"].append(record)
            progress.history["evals"].append(eval_record(progress.step, steps, interval, progress.step - last_eval, dev))
            last_eval, progress.epoch = progress.step, epoch + 1
            write_json(run_dir / "history.json", progress.history)
            if dev["mean_score"] > progress.best_score:
                progress.best_score = dev["mean_score"]
                save_best(run_dir, model, epoch + 1)
            save_checkpoint(run_dir / LAST, checkpoint(learner, streams, progress))
            saved_step = progress.step
            distributed.barrier()
            print(f"epoch {epoch + 1}: dev SST {dev['sst_accuracy']:.3f}, Quora {dev['quora_accuracy']:.3f}, "
                  f"STS {dev['sts_pearson']:.3f} ({record['seconds']:.0f} s)")
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"interrupted at step {progress.step}; run the same command again to resume "
                                  f"from step {saved_step}") from None
    return stop_at == epochs
