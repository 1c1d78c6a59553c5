"""The course data files: what they are called, where they come from, and what they should hold.

One entry per file of the CS224N starter repository's `data/` folder. Each entry
records the upstream file's size, SHA-256 and number of data rows (header not
counted). Where the upstream value is unknown (the two large Quora files, which
the kit's build machines never saw), the field is None: such a file cannot be
verified byte for byte, and the kit checks its row count instead.

    entry = data_file("quora", "train")      # -> DataFile(name="quora-train.csv", ...)
    entry.url()                               # where `minbert data fetch` downloads it from
"""
from __future__ import annotations

import os
from dataclasses import dataclass

# The starter repository, pinned to the commit that added the data ("Initial release",
# 2023-02-02), so the checksums below keep matching whatever happens on its branches.
UPSTREAM_REPO = "gpoesia/minbert-default-final-project"
UPSTREAM_COMMIT = "f25cd95c73a1ce3f3b88dd7a11df90f0ab488bd9"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/data"
BASE_URL_ENV = "MINBERT_DATA_URL"  # another server (or file:// folder) laid out like the upstream data/

SPLITS = ("train", "dev", "test")
# A file whose row count is below this share of the official count is reported as partial.
PARTIAL_THRESHOLD = 0.99


@dataclass(frozen=True)
class DataFile:
    """One upstream data file and what the kit knows about it."""

    name: str                 # file name inside the data folder
    task: str                 # sst, quora, sts or cfimdb
    split: str                # train, dev or test (test files carry no labels)
    rows: int                 # data rows in the upstream file, header not counted
    size: int | None = None   # bytes; None where unknown
    sha256: str | None = None  # hex digest; None where unknown

    @property
    def labeled(self) -> bool:
        """Test files (`*-test-student.csv`) hold no labels; train and dev files do."""
        return self.split != "test"

    @property
    def required(self) -> bool:
        """Training and evaluation need train and dev; test files only serve test predictions."""
        return self.split != "test"

    def url(self, base_url: str | None = None) -> str:
        """Download address: `base_url`, else $MINBERT_DATA_URL, else the pinned upstream commit."""
        base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        return f"{base.rstrip('/')}/{self.name}"

    def partial_warning(self, rows: int) -> str | None:
        """What to tell the user when `rows` falls well short of the official count, else None."""
        if rows >= PARTIAL_THRESHOLD * self.rows:
            return None
        warning = f"only {rows:,} of the official {self.rows:,} rows"
        if self.task == "quora":
            warning += "; Quora results are then not comparable with the CS224N leaderboard"
        return warning


FILES: tuple[DataFile, ...] = (
    DataFile("ids-sst-train.csv", "sst", "train", 8_544, 1_175_139,
             "03b2b625c090f94a6afd59f114cde5282e2053aab0b101e87ed695d8a0c5b1df"),
    DataFile("ids-sst-dev.csv", "sst", "dev", 1_101, 151_384,
             "a186ce94577635fbe10beaaddd50f16cccf6c30973221cefdf90deed2a584bfe"),
    DataFile("ids-sst-test-student.csv", "sst", "test", 2_210, 313_202,
             "bdd5a767faa0c26782117e37767ece154c30d5d04fb8727d09c71e3850a55c7b"),
    # The full Quora train file (about 22 MB) and test file are known by row count only.
    DataFile("quora-train.csv", "quora", "train", 141_506),
    DataFile("quora-dev.csv", "quora", "dev", 20_214, 3_205_321,
             "bfa3cc954a9ba300ae776a980141de65f622a3c1b97e3fd905d63245bc36d5ad"),
    DataFile("quora-test-student.csv", "quora", "test", 40_431),
    DataFile("sts-train.csv", "sts", "train", 6_040, 928_832,
             "15d12efc2d656fffb1d61ac1f08ec4227f43925fd16f420c037cbd063699c21b"),
    DataFile("sts-dev.csv", "sts", "dev", 863, 132_265,
             "ce3cad6f16062586ac7ba462c28b010a9be10c530fd5074165860d7b7ab4e93d"),
    DataFile("sts-test-student.csv", "sts", "test", 1_725, 256_677,
             "dee455745b72e9ca3ff74e7c056bd73e34bad5b8d5641045a2c1e7e131866f47"),
    DataFile("ids-cfimdb-train.csv", "cfimdb", "train", 1_707, 1_693_182,
             "140fc513045a966109faed46a5c7a898767b96714d71bcb9c15f659129fadcea"),
    DataFile("ids-cfimdb-dev.csv", "cfimdb", "dev", 245, 249_095,
             "3087f571b66860fe5d035b5a018d08202ad3fd3720e4821c04b2acf6c7ded559"),
    DataFile("ids-cfimdb-test-student.csv", "cfimdb", "test", 488, 495_595,
             "7ae611548c9eac879e9ebb406cc9f8ae68ff12f78090e4965af5cbdfa06240f4"),
)

# The tasks with upstream files: tasks.TASKS's, less any whose Task.files names its own (tasks imports
# this module, so the names come from FILES, not from tasks.TASKS).
TASKS = tuple(dict.fromkeys(f.task for f in FILES))


def data_file(task: str, split: str) -> DataFile:
    """The registry entry of one task's split; a ValueError names the valid choices."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    return next(f for f in FILES if f.task == task and f.split == split)
