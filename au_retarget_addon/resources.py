"""Files shipped inside the extension, and the rig package in either layout.

In the built extension `rigs/` is a subpackage of the add-on (relative imports only); in a
source checkout it is the repository's top-level package.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

ADDON_DIR = Path(__file__).resolve().parent
DEFAULT_BUNDLE = ADDON_DIR / "models" / "default"
DETECTOR_DIR = ADDON_DIR / "models" / "mtcnn"  # == core.detect.DEFAULT_MODEL_DIR
MAPPINGS_DIR = ADDON_DIR / "mappings"
ARKIT_MAPPING = MAPPINGS_DIR / "arkit.toml"
RIGIFY_MAPPING = MAPPINGS_DIR / "rigify_face.toml"


def rigs_module(name: str) -> ModuleType:
    """`rigs.<name>` from inside the extension, else from the source checkout."""
    inside = f"{__package__}.rigs"
    if importlib.util.find_spec(inside) is not None:
        return importlib.import_module(f"{inside}.{name}")
    return importlib.import_module(f"rigs.{name}")
