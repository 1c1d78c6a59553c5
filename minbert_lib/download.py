"""Downloading files: progress bar, resume of a partial download, checksum, atomic rename.

Used for the course data (`minbert data fetch`); hub weights go through
huggingface_hub instead (minbert_lib.weights). Works with http(s):// and file:// URLs, so the same code
is tested against local folders on machines without internet.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from minbert_lib.errors import DownloadError

CHUNK_BYTES = 1 << 16
# What every "no internet" message of the data commands says.
MIRROR_HINT = ("copy the files from a local folder: `minbert data fetch --mirror DIR`, or set "
               "MINBERT_DATA_MIRROR=DIR for every data command")


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_file(url: str, dest: str | Path, sha256: str | None = None, timeout: float = 60.0,
               progress: bool = True, size: int | None = None) -> Path:
    """Download `url` to `dest` and return `dest`.

    The bytes go to `dest + ".part"` first; an interrupted download resumes
    from there (HTTP Range) on the next call. The file is renamed into place
    only once it is complete and, when `size` (bytes) and `sha256` are given,
    they match (a prefix of the hex digest is enough). A mismatch deletes the
    partial file and raises `DownloadError`, so a retry starts clean.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0

    request = urllib.request.Request(url, headers={"User-Agent": "minbert-kit"})
    if have and url.startswith(("http://", "https://")):
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"cannot download {url}: {err}. Check the address or your connection; without "
                            f"internet, {MIRROR_HINT}") from err

    with response:
        resumed = getattr(response, "status", None) == 206
        if not resumed:
            have = 0
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        with open(part, "ab" if resumed else "wb") as out, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, desc=dest.name,
            disable=not progress, leave=False,
        ) as bar:
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                out.write(chunk)
                bar.update(len(chunk))

    if size is not None and part.stat().st_size != size:
        actual_size = part.stat().st_size
        part.unlink()
        raise DownloadError(f"{url}: expected {size:,} bytes, got {actual_size:,} (a truncated or different file); "
                            "the partial file was deleted, run the command again")
    if sha256 is not None:
        actual = sha256_of(part)
        if not actual.startswith(sha256.lower()):
            part.unlink()
            raise DownloadError(f"{url}: checksum mismatch (expected sha256 {sha256}..., got {actual[:16]}...); "
                                "the partial file was deleted, run the command again")
    os.replace(part, dest)
    return dest
