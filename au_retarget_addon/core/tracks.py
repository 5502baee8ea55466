"""Per-frame parameter tables: missing-frame policy, neutral calibration, CSV and NPZ."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write


class TracksError(ValueError):
    """A tracks table or option is wrong (names the file, frame or parameter)."""


@dataclass
class TrackReport:
    """What a tracking run met besides the values: the frames it dropped and why, the
    frames a missing-frame policy filled, and warnings for the user."""

    detected: int = 0  # frames with a face that passed the quality gate
    dropped: dict[str, int] = field(default_factory=dict)  # gate reason -> frames
    filled: int = 0  # frames without a face given values by the missing-frame policy
    detector_frames: int = 0  # frames on which MTCNN ran (all of them unless steered)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: 'a face in D; dropped X (reason), ...; filled F'."""
        from .face_quality import REASONS

        parts = [f"a face in {self.detected}"]
        if self.dropped:
            why = ", ".join(f"{n} {REASONS.get(r, r)}" for r, n in sorted(self.dropped.items()))
            parts.append(f"dropped {sum(self.dropped.values())} ({why})")
        if self.filled:
            parts.append(f"{self.filled} filled in")
        return "; ".join(parts)


@dataclass
class Tracks:
    frames: np.ndarray  # (T,) video frame indices
    times: np.ndarray  # (T,) seconds
    names: list[str]  # parameter names, the model card's order
    values: np.ndarray  # (T, P); NaN where no face was found
    confidence: np.ndarray  # (T,) the model's face presence (or detector score), 0: no face
    fps: float
    report: TrackReport = field(default_factory=TrackReport)

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.values).all(axis=1)


def fill_missing(tracks: Tracks, policy: str) -> Tracks:
    """Frames without a face: none (stay NaN), hold (last value) or interpolate (linear)."""
    if policy not in ("none", "hold", "interpolate"):
        raise TracksError(f"missing-frame policy must be none, hold or interpolate: {policy!r}")
    ok = tracks.found
    if policy == "none" or ok.all() or not ok.any():
        return tracks
    tracks.report.filled += int((~ok).sum())
    v = tracks.values
    idx = np.flatnonzero(ok)
    if policy == "hold":
        last = np.maximum.accumulate(np.where(ok, np.arange(len(ok)), -1))
        last[last < 0] = idx[0]  # before the first face: hold the first value
        tracks.values = v[last]
    else:
        tracks.values = np.stack(
            [np.interp(tracks.times, tracks.times[idx], v[idx, c]) for c in range(v.shape[1])],
            axis=1,
        )
    return tracks


def _au_columns(names: list[str], card: dict[str, Any]) -> list[int]:
    aus = card.get("groups", {}).get("au")
    aus = aus if aus is not None else [n for n in names if n.startswith("AU")]
    return [names.index(n) for n in aus if n in names]


def calibrate_neutral(tracks: Tracks, card: dict[str, Any], neutral: str | int) -> int:
    """Subtract the AU values of a neutral frame (given, or the least expressive one),
    clamped to each parameter's range; returns the row used."""
    cols = _au_columns(tracks.names, card)
    ok = np.flatnonzero(tracks.found)
    if neutral == "auto":
        row = int(ok[np.argmin(np.abs(tracks.values[ok][:, cols]).sum(axis=1))])
    else:
        hits = np.flatnonzero(tracks.frames == int(neutral))
        if len(hits) == 0 or not tracks.found[hits[0]]:
            raise TracksError(f"neutral frame {neutral} is not a tracked frame with a face")
        row = int(hits[0])
    base = tracks.values[row, cols].copy()
    ranges = card.get("ranges", {})
    for j, c in enumerate(cols):
        lo, hi = ranges.get(tracks.names[c], (-np.inf, np.inf))
        tracks.values[:, c] = np.clip(tracks.values[:, c] - base[j], lo, hi)
    return row


def write_csv(tracks: Tracks, path: str | Path) -> None:
    """frame, time, confidence, then one column per parameter; empty cells: no face."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["frame", "time", "confidence", *tracks.names])
            for i in range(len(tracks.frames)):
                vals = ["" if np.isnan(x) else f"{x:.6g}" for x in tracks.values[i]]
                w.writerow(
                    [
                        int(tracks.frames[i]),
                        f"{tracks.times[i]:.6f}",
                        f"{tracks.confidence[i]:.4f}",
                        *vals,
                    ]
                )

    atomic_write(Path(path), write)


def write_npz(tracks: Tracks, path: str | Path) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                frames=tracks.frames,
                times=tracks.times,
                names=np.array(tracks.names),
                values=tracks.values,
                confidence=tracks.confidence,
                fps=tracks.fps,
            )

    atomic_write(Path(path), write)


def read_npz(path: str | Path) -> Tracks:
    with np.load(path) as z:
        return Tracks(
            z["frames"],
            z["times"],
            [str(n) for n in z["names"]],
            z["values"],
            z["confidence"],
            float(z["fps"]),
        )


def scene_keys(tracks: Tracks, scene_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each tracked frame lands in a scene running at `scene_fps`: (frame offsets
    from the take's first frame, table rows). Times are kept, not frame counts: a video
    frame at t seconds goes to offset round(t * scene_fps). When the scene is slower than
    the video, several frames meet on one offset and the one closest in time wins; when it
    is faster, offsets are skipped and the F-curves interpolate between keys. Frames
    without a face get no key."""
    if scene_fps <= 0:
        raise TracksError(f"scene frame rate must be positive, got {scene_fps}")
    rows = np.flatnonzero(tracks.found)
    t = tracks.times[rows] - (tracks.times[0] if len(tracks.times) else 0.0)
    exact = t * scene_fps
    offsets = np.round(exact).astype(np.int64)
    order = np.lexsort((np.abs(exact - offsets), offsets))  # by offset, nearest first
    keep = np.ones(len(order), bool)
    keep[1:] = offsets[order][1:] != offsets[order][:-1]
    chosen = order[keep]
    return offsets[chosen], rows[chosen]


def blender_frame_rate(fps: float) -> tuple[int, float]:
    """A frame rate as Blender's scene stores it, (fps, fps_base) with fps / fps_base the
    rate: 30 -> (30, 1.0), 29.97 (30000/1001) -> (30, 1.001), 23.976 -> (24, 1.001)."""
    if not (np.isfinite(fps) and fps > 0):
        raise TracksError(f"frame rate must be positive, got {fps}")
    whole = max(1, int(round(fps)))
    base = whole / fps
    return whole, 1.0 if abs(base - 1.0) < 1e-6 else base
