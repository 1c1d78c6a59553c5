"""`minbert data fetch`: put the course data files in the data folder, verified.

The files come from the starter repository (see `registry`) or, with a mirror,
from a local folder holding files of the same names (a course server's copy, a
USB stick, the build machines' `../shared/data`). Each file is checked against
the registry: size and SHA-256 where the upstream values are known, the row
count where they are not. A file already in place that passes the check is
kept; a bad one is fetched again.

Nothing here stops at the first problem: every file gets a `FetchResult`, and
the caller decides what is fatal (the CLI fails only on `status == "failed"`).

A mirror may hold a partial file (the build machines' quora-train.csv) or lack one
(quora-test-student.csv). What a mirror gave is recorded in the data folder
(`RECORD`), so that a later `minbert data fetch` without a mirror, on a machine
without internet (`make demo`), keeps the partial copy and accepts the gap
instead of trying to download them; `refresh=True` (`--refresh`) tries again.

    results = fetch_data("data", mirror="../shared/data")
    for r in results:
        print(r)                 # "quora-train.csv: partial: 13,507 of the official 141,506 rows; ..."
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from minbert_lib.data import read_split, resolve_data_dir
from minbert_lib.download import fetch_file, sha256_of
from minbert_lib.errors import DataError, DownloadError
from minbert_lib.registry import FILES, DataFile

MIRROR_ENV = "MINBERT_DATA_MIRROR"
# In the data folder: the partial and missing files a mirror gave, accepted as they are.
RECORD = ".minbert-mirror.json"

# Outcomes of fetching one file. Only "failed" means the data folder lacks a good copy
# that the source had; "missing" means the source does not have the file at all.
STATUSES = ("fetched", "present", "partial", "missing", "failed")


@dataclass(frozen=True)
class FetchResult:
    """What happened to one registry file."""

    name: str
    status: str   # one of STATUSES
    detail: str   # one line for the user

    def __str__(self) -> str:
        return f"{self.name}: {self.status}: {self.detail}"


def resolve_mirror(mirror: str | Path | None = None) -> Path | None:
    """The mirror folder: the argument, else $MINBERT_DATA_MIRROR, else None (download upstream)."""
    if mirror is None and os.environ.get(MIRROR_ENV):
        mirror = os.environ[MIRROR_ENV]
    if mirror is None:
        return None
    mirror = Path(mirror).expanduser().resolve()
    if not mirror.is_dir():
        raise DataError(f"mirror {mirror} is not a folder: give --mirror (or ${MIRROR_ENV}) "
                        "a folder holding the CS224N data files")
    return mirror


def is_good_copy(entry: DataFile, path: Path) -> bool:
    """Whether `path` already holds the file: size and SHA-256 decide where the registry
    knows them; a file known only by its row count must parse and be complete."""
    if not path.is_file():
        return False
    if entry.sha256 is not None:
        return path.stat().st_size == entry.size and sha256_of(path) == entry.sha256
    try:
        return read_split(entry.task, entry.split, path.parent).partial_warning() is None
    except DataError:
        return False


def read_record(folder: Path) -> dict[str, dict]:
    """{file name: {"status": "partial" or "missing", "mirror": folder, "sha256": of the partial copy}}."""
    try:
        return json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def accepted_from_mirror(entry: DataFile, dest: Path, accepted: dict | None) -> FetchResult | None:
    """The result for a file an earlier mirror fetch gave as partial or missing, if it still stands."""
    if accepted is None:
        return None
    again = "`minbert data fetch --refresh` tries the download again"
    if accepted["status"] == "partial" and dest.is_file() and sha256_of(dest) == accepted.get("sha256"):
        return FetchResult(entry.name, "partial", f"kept the partial copy from the mirror {accepted['mirror']}, "
                                                  f"{entry.partial_warning(_rows(entry, dest)) or 'partial'}; {again}")
    if accepted["status"] == "missing" and not dest.exists():
        need = "" if entry.required else " (needed only for test predictions)"
        return FetchResult(entry.name, "missing", f"the mirror {accepted['mirror']} lacks it{need}; {again}")
    return None


def _rows(entry: DataFile, path: Path) -> int:
    split = read_split(entry.task, entry.split, path.parent)
    return len(split.examples) + len(split.malformed)


def fetch_one(entry: DataFile, folder: Path, mirror: Path | None, base_url: str | None,
              progress: bool, accepted: dict | None = None) -> FetchResult:
    """Fetch one registry file into `folder` unless a good copy is there already (or, without a mirror,
    the partial copy or gap `accepted` from an earlier mirror fetch)."""
    dest = folder / entry.name
    if is_good_copy(entry, dest):
        return FetchResult(entry.name, "present", "already in place and verified")
    if mirror is None:
        kept = accepted_from_mirror(entry, dest, accepted)
        if kept is not None:
            return kept

    if mirror is not None:
        source = mirror / entry.name
        if not source.is_file():
            need = "" if entry.required else " (needed only for test predictions)"
            return FetchResult(entry.name, "missing", f"not in the mirror {mirror}{need}")
        url = source.as_uri()
    else:
        url = entry.url(base_url)
    try:
        fetch_file(url, dest, sha256=entry.sha256, size=entry.size, progress=progress)
    except DownloadError as err:
        return FetchResult(entry.name, "failed", str(err))
    if entry.sha256 is not None:
        return FetchResult(entry.name, "fetched", f"from {url}, size and sha256 verified")

    # No upstream checksum: the row count is the only check there is.
    try:
        partial = read_split(entry.task, entry.split, folder).partial_warning()
    except DataError as err:
        return FetchResult(entry.name, "failed", str(err))
    if partial:
        return FetchResult(entry.name, "partial", partial)
    return FetchResult(entry.name, "fetched", f"from {url}, row count complete (no upstream checksum known)")


def fetch_data(data_dir: str | Path | None = None, mirror: str | Path | None = None,
               base_url: str | None = None, progress: bool = True, refresh: bool = False) -> list[FetchResult]:
    """Fetch every registry file into the data folder; one `FetchResult` per file, in registry order.

    `mirror` (or $MINBERT_DATA_MIRROR) copies from a local folder instead of downloading;
    `base_url` (or $MINBERT_DATA_URL) downloads from another server laid out like upstream.
    Without a mirror, files an earlier mirror fetch gave as partial or missing are kept as they
    are unless `refresh` is true.
    """
    folder = resolve_data_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    source = resolve_mirror(mirror)
    record = read_record(folder)
    results = [fetch_one(entry, folder, source, base_url, progress, None if refresh else record.get(entry.name))
               for entry in FILES]
    for result in results:
        if source is not None and result.status in ("partial", "missing"):
            dest = folder / result.name
            record[result.name] = {"status": result.status, "mirror": str(source),
                                   "sha256": sha256_of(dest) if dest.is_file() else None}
        elif result.status in ("fetched", "present"):
            record.pop(result.name, None)
    if record:
        (folder / RECORD).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    elif (folder / RECORD).exists():
        (folder / RECORD).unlink()
    return results
