"""Output files: checked before the work that fills them, written whole (a temporary file
beside the target, renamed over it) and with the permissions the user's umask gives any
new file (a temporary file alone would stay owner-only)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputError(OSError):
    """An output cannot be written where it was asked for (names the path)."""


def umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode open() gives a new file under the current umask (0o644 under 022)."""
    return 0o666 & ~umask()


def new_folder_mode() -> int:
    return 0o777 & ~umask()


def check_output(path: Path, suffixes: tuple[str, ...] = ()) -> Path:
    """Refuse, before any work, an output path that cannot be written: a wrong suffix
    (compared case-insensitively), a folder, a parent that is a file or cannot be written
    to. Creates missing parent folders."""
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(f"{path}: use a file name ending in {' or '.join(suffixes)}")
    try:
        _check_place(path)
    except OutputError:
        raise
    except OSError as exc:  # e.g. a parent folder this user may not enter
        raise OutputError(f"{path} cannot be reached ({exc.strerror or exc})") from exc
    return path


def _check_place(path: Path) -> None:
    if path.is_dir():
        raise OutputError(f"{path} is a folder: give a file name inside it")
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{path}: {parent} is a file, not a folder")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: its folder cannot be created ({exc.strerror})") from exc
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: the folder {path.parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{path} exists and is read-only")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; when the block ends without an
    error it is given the umask's mode and renamed to `path`, otherwise removed."""
    # the target's suffix last: numpy appends ".npz" to a name without it
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".part{path.suffix}"
    )
    os.close(fd)
    part = Path(tmp)
    try:
        yield part
        part.chmod(new_file_mode())
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` fills a temporary file that then replaces `path` (atomic_path)."""
    with atomic_path(path) as tmp:
        write(tmp)


def atomic_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
