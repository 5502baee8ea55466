"""Folders written all at once: a bundle appears complete or not at all, so a kill or an
error never leaves a half-written model behind."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from au_retarget_addon.core.files import new_folder_mode


@contextmanager
def atomic_folder(out: Path, prefix: str = ".tmp_") -> Iterator[Path]:
    """Yield a temporary folder beside `out`; when the block ends without an error it
    replaces `out`, otherwise it is deleted and `out` stays as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
    try:
        yield tmp
        tmp.chmod(new_folder_mode())  # mkdtemp makes it owner-only
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
