"""Size-based rotation of the logs under `<run_dir>/logs`, by copy and truncate.

Every process writes its log through a descriptor opened with O_APPEND (see
`ManagedProcess.start`), so truncating the file in place is safe: the next write lands
at the new end, without a hole. Renaming instead would leave the writers on the
renamed file. What a process writes between the copy and the truncation is lost: the
price of copy-truncate, small next to a full disk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from stack.private import FILE_MODE


def backup(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def rotate(path: Path, max_bytes: int, backups: int) -> bool:
    """Rotate `path` when it is larger than `max_bytes`: name.log.1 is the newest of `backups` copies."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    if backups > 0:
        for n in range(backups - 1, 0, -1):
            if backup(path, n).exists():
                os.replace(backup(path, n), backup(path, n + 1))
        tmp = path.with_name(f"{path.name}.rotating")  # not *.log: never listed as a log of its own
        shutil.copyfile(path, tmp)
        tmp.chmod(FILE_MODE)  # copyfile makes it by the umask: a copy of a private log stays private
        os.replace(tmp, backup(path, 1))
    os.truncate(path, 0)
    return True


def rotate_logs(log_dir: Path, max_bytes: int, backups: int) -> list[Path]:
    """Rotate every `*.log` of the directory that grew too large; returns those rotated."""
    return [path for path in sorted(log_dir.glob("*.log")) if rotate(path, max_bytes, backups)]
