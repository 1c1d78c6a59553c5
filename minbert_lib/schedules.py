"""Which task batches a multitask epoch runs, and in what order.

A `TaskStream` hands out one task's batches (lists of example indices) pass
after pass, reshuffled each pass, and remembers where it stopped, so that a
run can resume exactly. The schedules of the report:

    BL   only SST: one pass over SST per epoch.
    TM1  as many steps as the *largest* dataset has batches; every step takes one
         batch of each task; the smaller datasets cycle, and every epoch starts
         every dataset afresh.
    TM2  as many steps as the *smallest* dataset has batches; every step takes one
         batch of each task; the larger datasets resume next epoch where they stopped.

Each step yields {task: batch indices}; the trainer sums the tasks' losses.
Each schedule is one `Schedule` in `SCHEDULES`: the tasks it trains, one
epoch's steps and how many there are; the trainer and notebook 05's checks use
the same objects. `named_schedule("TM1")` gives one of the report's; a script can
make its own (results/data_curve.py trains Quora alone).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from minbert_lib.errors import ConfigError
from minbert_lib.tasks import REPORT_TASKS

BatchPlan = list[list[int]]  # one pass over a dataset: a list of batches of example indices


class TaskStream:
    """An endless, resumable sequence of batches over one dataset."""

    def __init__(self, plan_for_pass: Callable[[int], BatchPlan]):
        # plan_for_pass(p) gives the batches of pass p; it must be deterministic in p
        self.plan_for_pass = plan_for_pass
        self.pass_index = 0
        self.offset = 0  # batches of the current pass already handed out
        self._plan = plan_for_pass(0)
        if not self._plan:
            raise ValueError("a task stream needs at least one batch per pass")

    @property
    def batches_per_pass(self) -> int:
        return len(self._plan)

    def next_batch(self) -> list[int]:
        if self.offset == len(self._plan):
            self.start_new_pass()
        batch = self._plan[self.offset]
        self.offset += 1
        return batch

    def start_new_pass(self) -> None:
        """Skip the rest of the current pass (nothing happens at the very start of a pass)."""
        if self.offset == 0:
            return
        self.pass_index += 1
        self.offset = 0
        self._plan = self.plan_for_pass(self.pass_index)

    def state_dict(self) -> dict:
        return {"pass_index": self.pass_index, "offset": self.offset}

    def load_state_dict(self, state: dict) -> None:
        self.pass_index, self.offset = state["pass_index"], state["offset"]
        self._plan = self.plan_for_pass(self.pass_index)


Step = dict[str, list[int]]


def baseline_epoch(streams: dict[str, TaskStream]) -> Iterator[Step]:
    """BL: one pass over SST."""
    sst = streams["sst"]
    sst.start_new_pass()
    for _ in range(sst.batches_per_pass):
        yield {"sst": sst.next_batch()}


def tm1_epoch(streams: dict[str, TaskStream]) -> Iterator[Step]:
    """TM1: run through the largest dataset; cycle the smaller ones; all restart every epoch."""
    for stream in streams.values():
        stream.start_new_pass()
    steps = max(stream.batches_per_pass for stream in streams.values())
    for _ in range(steps):
        yield {task: stream.next_batch() for task, stream in streams.items()}


def tm2_epoch(streams: dict[str, TaskStream]) -> Iterator[Step]:
    """TM2: as many steps as the smallest dataset has batches; the others resume next epoch."""
    steps = min(stream.batches_per_pass for stream in streams.values())
    for _ in range(steps):
        yield {task: stream.next_batch() for task, stream in streams.items()}


@dataclass(frozen=True)
class Schedule:
    """A schedule as the trainer and the checks use it."""
    tasks: tuple[str, ...]                                         # the tasks it trains: one stream each
    epoch: Callable[[dict[str, TaskStream]], Iterator[Step]]       # the steps of one epoch
    steps_per_epoch: Callable[[dict[str, TaskStream]], int]        # how many steps `epoch` yields


# The report's schedules, each declared once.
SCHEDULES: dict[str, Schedule] = {
    "BL": Schedule(("sst",), baseline_epoch, lambda streams: streams["sst"].batches_per_pass),
    "TM1": Schedule(REPORT_TASKS, tm1_epoch, lambda streams: max(s.batches_per_pass for s in streams.values())),
    "TM2": Schedule(REPORT_TASKS, tm2_epoch, lambda streams: min(s.batches_per_pass for s in streams.values())),
}


def named_schedule(name: str) -> Schedule:
    """BL, TM1 or TM2."""
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}: choose one of {list(SCHEDULES)}")
    return SCHEDULES[name]
