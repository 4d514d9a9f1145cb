"""Writing outputs safely: whole or not at all, and never over what genrec did not write.

Every folder genrec makes carries a marker file. A folder may be replaced only when it is empty or carries
the marker, so a mistyped `--out` can never delete a user's files; an output may not be an input or lie
inside one. At the bottom of the layer order (standard library only), so every layer writes the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import DataError

MARKER = ".genrec"  # in every folder genrec writes: what genrec may replace


def made_by_genrec(folder: str | Path) -> bool:
    return (Path(folder) / MARKER).is_file()


def foreign(folder: str | Path) -> bool:
    """True when `folder` exists and holds what genrec did not write (a file, or a non-empty unmarked folder):
    genrec never replaces it."""
    folder = Path(folder)
    if not folder.exists():
        return False
    return not folder.is_dir() or (any(folder.iterdir()) and not made_by_genrec(folder))


def mark(folder: str | Path) -> Path:
    """Create `folder` (if needed) as a genrec output folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).touch()
    return folder


def check_output(out: str | Path, *, inputs: tuple = (), overwrite: bool = False, what: str = "--out") -> Path:
    """`out` as a folder genrec may write: new, empty, or made by genrec (then only with `overwrite`), and
    neither equal to nor inside nor around an input. Fails before any work, naming the folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{what} {out}: is a file, not a folder")
    resolved = out.resolve()
    for source in inputs:
        if source is None:
            continue
        source = Path(source).resolve()
        if resolved == source or source in resolved.parents or resolved in source.parents:
            raise DataError(f"{what} {out}: overlaps the input {source}; write the output somewhere else")
    if foreign(out):
        raise DataError(f"{what} {out}: the folder exists and genrec did not make it; choose a new folder "
                        "(genrec only replaces folders it wrote)")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{what} {out}: exists (a genrec output); pass --overwrite to replace it")
    return out


def check_output_file(out: str | Path, *, overwrite: bool = False, what: str = "--out") -> Path:
    """A file path genrec may write: not a folder; an existing file only with `overwrite`."""
    out = Path(out)
    if out.is_dir():
        raise DataError(f"{what} {out}: is a folder; give a file name")
    if out.exists() and not overwrite:
        raise DataError(f"{what} {out}: exists; pass --overwrite to replace it")
    return out


@contextmanager
def atomic_folder(out_dir: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `out_dir`; on success it replaces `out_dir` (only an empty folder or one
    genrec made), on failure it is removed."""
    out_dir = Path(out_dir)
    if foreign(out_dir):
        raise DataError(f"{out_dir}: exists and genrec did not make it; genrec will not replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield tmp
        mark(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Yield an open temporary file beside `path`; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(mode, dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            yield handle
        os.replace(handle.name, path)
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold `folder/.lock` (this process's PID) while the block runs; a second holder fails at once, naming the
    first one's PID. A lock whose process is gone (a killed run) is taken over."""
    lock = Path(folder) / ".lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = lock.read_text().strip() if lock.is_file() else ""
            if holder.isdigit() and _alive(int(holder)):
                raise DataError(f"{folder} is in use by process {holder} (another genrec run); wait for it or "
                                f"stop it") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        break
    else:
        raise DataError(f"{lock}: cannot take the lock")
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
