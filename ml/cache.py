"""Where regenerable work lives: fetched media, detections, aligned crops. Outside the
checkout, so a kept machine reuses it and a fresh clone never commits it.

`AURT_CACHE` overrides the folder; otherwise `$XDG_CACHE_HOME/au-retarget`, falling back
to `~/.cache/au-retarget` as the XDG base-directory convention says.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The project's cache folder (or a subfolder of it); not created here."""
    root = os.environ.get("AURT_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "au-retarget")
    return Path(root).joinpath(*parts)
