"""Bpy-free view of the rig spec: names, ranges, defaults, vector layout, FACS groups, hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from . import face_spec as data

GROUPS = ("pose", "gaze", "au", "identity", "brow_style")
CHANNELS = {"loc": "location", "rot": "rotation_euler", "scale": "scale"}
AXES = {"x": 0, "y": 1, "z": 2}
FACS_SCALE = 5.0


class RigSpecError(ValueError):
    """The rig spec is inconsistent (names the parameter or bone at fault)."""


@dataclass(frozen=True)
class Effect:
    bone: str
    channel: str  # loc | rot | scale
    axis: str  # x | y | z (bone-local)
    gain: float  # per unit of (value - default); degrees for rot
    style: int | None = None  # brow style index this effect belongs to


@dataclass(frozen=True)
class Param:
    name: str
    group: str
    index: int
    min: float
    max: float
    default: float
    effects: tuple[Effect, ...]
    facs: str | None = None  # FACS code for AU parameters ("AU12"), else None
    side: str | None = None  # "L", "R" or None
    doc: str = ""
    discrete: bool = False


@dataclass(frozen=True)
class Bone:
    name: str
    parent: str | None
    deform: bool


@dataclass(frozen=True)
class RigSpec:
    params: tuple[Param, ...]
    bones: tuple[Bone, ...]
    labels: tuple[str, ...]
    brow_styles: tuple[str, ...]
    _by_name: dict[str, Param] = field(default_factory=dict, compare=False, repr=False)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def size(self) -> int:
        return len(self.params)

    def param(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise RigSpecError(f"unknown rig parameter {name!r}") from None

    def group(self, group: str) -> list[Param]:
        return [p for p in self.params if p.group == group]

    def layout(self) -> dict[str, slice]:
        """Contiguous slice of the parameter vector for each group, in spec order."""
        out: dict[str, slice] = {}
        for g in GROUPS:
            idx = [p.index for p in self.group(g)]
            out[g] = slice(min(idx), max(idx) + 1)
        return out

    def defaults(self) -> np.ndarray:
        return np.array([p.default for p in self.params], dtype=np.float32)

    def mins(self) -> np.ndarray:
        return np.array([p.min for p in self.params], dtype=np.float32)

    def maxs(self) -> np.ndarray:
        return np.array([p.max for p in self.params], dtype=np.float32)

    def facs_groups(self) -> dict[str, list[int]]:
        """FACS AU code -> parameter indices to average (left/right) for evaluation."""
        groups: dict[str, list[int]] = {}
        for p in self.params:
            if p.facs:
                groups.setdefault(p.facs, []).append(p.index)
        return groups

    def facs_intensity(self, vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        """FACS intensities (0..5) per AU from parameter vectors of shape (..., size)."""
        groups = self.facs_groups()
        cols = [vectors[..., idx].mean(axis=-1) * FACS_SCALE for idx in groups.values()]
        return list(groups), np.stack(cols, axis=-1)

    def mirror(self) -> tuple[np.ndarray, np.ndarray]:
        """How the face's mirror image (a horizontal flip) reads in parameters: for each
        parameter i, the parameter `source[i]` it takes its value from and `sign[i]` for that
        value's offset from its default. AU12_L takes AU12_R's value (sign 1); head_yaw,
        head_roll, gaze_yaw and AD30 keep their own, negated (sign -1). Worked out from the
        effects (left and right bones swapped, x translation and y/z rotation negated), so a
        parameter whose mirror the rig cannot pose is refused by name."""

        def key(effects: Iterable[Effect], flip: float) -> tuple:
            return tuple(
                sorted(
                    (e.bone, e.channel, e.axis, round(flip * e.gain, 6), e.style) for e in effects
                )
            )

        def mirrored(e: Effect) -> Effect:
            bone = e.bone
            if bone.endswith((".L", ".R")):
                bone = bone[:-1] + ("R" if bone.endswith(".L") else "L")
            sign = -1.0 if (e.channel, e.axis) in data.MIRRORED else 1.0
            return Effect(bone, e.channel, e.axis, sign * e.gain, e.style)

        by_effects = {key(p.effects, 1.0): p for p in self.params}
        source = np.zeros(self.size, dtype=np.int64)
        sign = np.ones(self.size, dtype=np.float32)
        for p in self.params:
            m = [mirrored(e) for e in p.effects]
            q = by_effects.get(key(m, 1.0))
            if q is None and key(m, -1.0) == key(p.effects, 1.0):
                q, sign[p.index] = p, -1.0
                if not np.isclose(p.default - p.min, p.max - p.default):
                    raise RigSpecError(
                        f"parameter {p.name!r}: its mirror negates it, but its range is not "
                        "symmetric about its default"
                    )
            if (
                q is None
                or q.group != p.group
                or (q.min, q.max, q.default) != (p.min, p.max, p.default)
            ):
                raise RigSpecError(f"parameter {p.name!r}: no parameter poses its mirror image")
            source[p.index] = q.index
        return source, sign

    def mirrored(self, vectors: np.ndarray) -> np.ndarray:
        """Parameter vectors (..., size) of the mirror-image faces (see `mirror`)."""
        source, sign = self.mirror()
        d = self.defaults()
        return d + sign * (vectors[..., source] - d[source])

    def to_dict(self) -> dict:
        return {
            "params": [asdict(p) for p in self.params],
            "bones": [asdict(b) for b in self.bones],
            "labels": list(self.labels),
            "brow_styles": list(self.brow_styles),
            "rig_version": data.RIG_VERSION,
        }

    def hash(self) -> str:
        """Stable sha256 of the spec content (order, ranges, defaults, effects, bones)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _effects(raw: list, style: int | None = None) -> tuple[Effect, ...]:
    return tuple(Effect(b, c, a, float(g), style) for b, c, a, g in raw)


def _mirror(raw: list[data.Effect]) -> list[data.Effect]:
    out = []
    for bone, ch, ax, gain in raw:
        if not bone.endswith(".L"):
            raise RigSpecError(f"split AU effect on non-left bone {bone!r}")
        sign = -1.0 if (ch, ax) in data.MIRRORED else 1.0
        out.append((bone[:-2] + ".R", ch, ax, sign * gain))
    return out


def _raw_params() -> list[dict]:
    rows: list[dict] = []
    for p in data.POSE:
        rows.append({**p, "group": "pose", "default": 0.0})
    for p in data.GAZE:
        rows.append({**p, "group": "gaze", "default": 0.0})
    for code, doc, eff in data.AU_SPLIT:
        for side, e in (("L", eff), ("R", _mirror(eff))):
            rows.append(
                {
                    "name": f"{code}_{side}",
                    "group": "au",
                    "min": 0.0,
                    "max": 1.0,
                    "default": 0.0,
                    "effects": e,
                    "facs": code,
                    "side": side,
                    "doc": doc,
                }
            )
    for code, doc, eff in data.AU_SINGLE:
        rows.append(
            {
                "name": code,
                "group": "au",
                "min": 0.0,
                "max": 1.0,
                "default": 0.0,
                "effects": eff,
                "facs": code,
                "doc": doc,
            }
        )
    rows.append({**data.AD30, "group": "au", "default": 0.0})
    for p in data.IDENTITY:
        rows.append({**p, "group": "identity", "min": 0.0, "max": 1.0, "default": 0.5})
    return rows


def _check(spec: RigSpec) -> None:
    bones = {b.name for b in spec.bones}
    seen: set[str] = set()
    for b in spec.bones:
        if b.parent is not None and b.parent not in seen:
            raise RigSpecError(f"bone {b.name!r}: parent {b.parent!r} must come first")
        seen.add(b.name)
    for p in spec.params:
        if not p.min <= p.default <= p.max:
            raise RigSpecError(f"parameter {p.name!r}: default outside [{p.min}, {p.max}]")
        for e in p.effects:
            if e.bone not in bones:
                raise RigSpecError(f"parameter {p.name!r}: unknown bone {e.bone!r}")
            if e.channel not in CHANNELS or e.axis not in AXES:
                raise RigSpecError(f"parameter {p.name!r}: bad channel {e.channel}.{e.axis}")
    if len(spec.names) != len(set(spec.names)):
        raise RigSpecError("duplicate parameter names")


@lru_cache(maxsize=1)
def load_spec() -> RigSpec:
    """Build and validate the v1 spec from `rigs.face_spec`."""
    params: list[Param] = []
    for i, r in enumerate(_raw_params()):
        params.append(
            Param(
                name=r["name"],
                group=r["group"],
                index=i,
                min=float(r["min"]),
                max=float(r["max"]),
                default=float(r["default"]),
                effects=_effects(r["effects"]),
                facs=r.get("facs"),
                side=r.get("side"),
                doc=r.get("doc", ""),
            )
        )
    style_effects = tuple(Effect(b, c, a, float(g), s) for s, b, c, a, g in data.BROW_STYLE_EFFECTS)
    params.append(
        Param(
            name="brow_style",
            group="brow_style",
            index=len(params),
            min=0.0,
            max=float(len(data.BROW_STYLES) - 1),
            default=0.0,
            effects=style_effects,
            doc="discrete: " + ", ".join(data.BROW_STYLES),
            discrete=True,
        )
    )
    spec = RigSpec(
        params=tuple(params),
        bones=tuple(Bone(n, p, d) for n, p, d in data.BONES),
        labels=tuple(data.LABELS),
        brow_styles=tuple(data.BROW_STYLES),
    )
    spec._by_name.update({p.name: p for p in params})
    _check(spec)
    return spec
