"""Retarget mappings: from our parameters to another character's shape keys or bones.

A mapping is a TOML file (format "aurt-mapping-1"):

    format = "aurt-mapping-1"
    name = "ARKit 52 blendshapes"
    kind = "shape_keys"                 # or "bones"

    [[target]]
    name = "eyeBlinkLeft"               # shape key name; for bones: "bone_name"
    # channel = "rotation_euler"        # bones only: location, rotation_euler or scale
    # index = 0                         # bones only: 0, 1, 2 = X, Y, Z
    # order = "XYZ"                     # rotation_euler only: see below
    source = { AU43_L = 1.0 }           # value = offset + sum(weight * parameter)
    offset = 0.0                        # optional
    clamp = [0.0, 1.0]                  # optional; shape keys default to [0, 1]

Parameters are in the rig spec's units (AUs 0..1, pose and gaze in degrees); a bone's
rotation target is in degrees too and is converted to radians when it is keyed.

A bone's rotation_euler targets without `order` are keyed as they are into its Euler
channels, so the bone must rotate in an Euler mode. With `order` (one of EULER_ORDERS; the
same on every rotation_euler target of that bone) the three angles are one rotation in that
Euler order (axes the mapping leaves out are 0), keyed in whatever mode the bone rotates:
quaternion, axis-angle or any Euler order. Paper Figure 5: the same head pose and AU
parameters drive other characters.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "aurt-mapping-1"
KINDS = ("shape_keys", "bones")
BONE_CHANNELS = ("location", "rotation_euler", "scale")
EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


class MappingError(ValueError):
    """A mapping file is wrong or does not fit the tracks (names the file and the entry)."""


@dataclass(frozen=True)
class Target:
    name: str  # shape key, or bone
    source: dict[str, float]  # our parameter -> weight
    offset: float = 0.0
    clamp: tuple[float, float] | None = None
    channel: str = ""  # bones only
    index: int = 0  # bones only
    order: str | None = None  # rotation_euler only: convert to the bone's rotation mode


@dataclass(frozen=True)
class Mapping:
    name: str
    kind: str
    targets: tuple[Target, ...]

    def evaluate(self, names: list[str], values: np.ndarray) -> np.ndarray:
        """(T, P) parameter values in `names` order -> (T, targets) target values; NaN rows
        (frames without a face) stay NaN."""
        col = {n: i for i, n in enumerate(names)}
        missing = sorted({p for t in self.targets for p in t.source if p not in col})
        if missing:
            raise MappingError(f"mapping {self.name!r} reads parameters the tracks lack: {missing}")
        out = np.empty((values.shape[0], len(self.targets)), np.float64)
        for j, t in enumerate(self.targets):
            v = np.full(values.shape[0], t.offset, np.float64)
            for p, w in t.source.items():
                v = v + w * values[:, col[p]]
            out[:, j] = np.clip(v, *t.clamp) if t.clamp is not None else v
        return out


def _target(raw: dict, kind: str, where: str) -> Target:
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        raise MappingError(f"{where}: every target needs a 'name'")
    source = raw.get("source", {})
    if not isinstance(source, dict) or not all(isinstance(w, int | float) for w in source.values()):
        raise MappingError(f"{where} ({raw['name']}): 'source' must map parameters to numbers")
    clamp = raw.get("clamp", [0.0, 1.0] if kind == "shape_keys" else None)
    if clamp is not None and (len(clamp) != 2 or clamp[0] > clamp[1]):
        raise MappingError(f"{where} ({raw['name']}): 'clamp' must be [low, high]")
    channel, index = str(raw.get("channel", "")), int(raw.get("index", 0))
    if kind == "bones" and (channel not in BONE_CHANNELS or index not in (0, 1, 2)):
        raise MappingError(
            f"{where} ({raw['name']}): bones need channel in {BONE_CHANNELS} and index 0..2"
        )
    order = raw.get("order")
    if order is not None and (channel != "rotation_euler" or order not in EULER_ORDERS):
        raise MappingError(
            f"{where} ({raw['name']}): 'order' is for rotation_euler targets, one of {EULER_ORDERS}"
        )
    return Target(
        raw["name"],
        {str(k): float(w) for k, w in source.items()},
        float(raw.get("offset", 0.0)),
        (float(clamp[0]), float(clamp[1])) if clamp is not None else None,
        channel,
        index,
        order,
    )


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"mapping file {path}: {exc}") from exc
    if raw.get("format") != FORMAT:
        raise MappingError(f"mapping file {path}: 'format' must be {FORMAT!r}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise MappingError(f"mapping file {path}: 'kind' must be one of {KINDS}")
    items = raw.get("target", [])
    if not items:
        raise MappingError(f"mapping file {path} has no [[target]] entries")
    targets = tuple(_target(t, kind, f"{path} target {i}") for i, t in enumerate(items))
    keys = [(t.name, t.channel, t.index) for t in targets]
    if len(set(keys)) != len(keys):
        raise MappingError(f"mapping file {path} names a target twice")
    orders: dict[str, set[str | None]] = {}
    for t in targets:
        if t.channel == "rotation_euler":
            orders.setdefault(t.name, set()).add(t.order)
    mixed = sorted(n for n, o in orders.items() if len(o) > 1)
    if mixed:
        raise MappingError(
            f"mapping file {path}: the rotation_euler targets of bone {mixed[0]!r} "
            "need the same 'order'"
        )
    return Mapping(str(raw.get("name", path.stem)), kind, targets)
