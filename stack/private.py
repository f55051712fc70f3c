"""Run files readable by their owner only: directories 0700, files 0600.

Logs can hold what a service printed (record payloads, error text), pid and state files
say what runs, data directories hold the pipeline's data: nothing of it is for other
users of the machine. `ManagedProcess` also starts every process with umask 077, so
what the servers create themselves (Kafka's log segments, Elasticsearch's data,
FerretDB's SQLite files, Spark's checkpoints) is private as well.
"""

from __future__ import annotations

import os
from pathlib import Path

UMASK = 0o077  # of every process the stack starts (and of `python -m stack` itself)
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, keep_search: bool = False) -> Path:
    """Create `path` (and missing parents, each 0700) or tighten it to 0700. With `keep_search`
    (the run directory only) an others-search bit already there is kept: Elasticsearch run as
    its own user when we are root must traverse it to its home, never list it
    (`stack.servers._hand_over` grants that bit, for PostgreSQL as well)."""
    missing = [p for p in [path, *path.parents] if not p.exists()]
    for p in reversed(missing):
        p.mkdir(mode=DIR_MODE, exist_ok=True)
    path.chmod(DIR_MODE | (path.stat().st_mode & 0o001 if keep_search else 0))
    for p in missing:
        p.chmod(DIR_MODE)  # mkdir's mode is filtered by the umask: set it exactly
    return path


def _private_fd(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # an older file keeps its mode on open: tighten it
    return fd


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, mode 0600."""
    with os.fdopen(_private_fd(path, os.O_WRONLY | os.O_TRUNC), "w") as fh:
        fh.write(text)


def open_private_append(path: Path, text: bool = False, buffering: int = -1):
    """Open `path` for appending (O_APPEND: see stack.logrotate), mode 0600."""
    return os.fdopen(_private_fd(path, os.O_WRONLY | os.O_APPEND), "a" if text else "ab", buffering=buffering)
