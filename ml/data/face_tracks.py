"""Every face in a clip as its own track: per-frame detections linked across frames by box
overlap, so a clip of several people gives one track per face that can be followed.

A detection joins the track whose last box it overlaps most (IoU at least `min_iou`),
if that track was seen within `max_gap` frames; otherwise it starts a new track. Greedy,
best-scored detections first: faces at a table do not swap seats between frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each box in a (N, 4) with each in b (M, 4), boxes as x0, y0, x1, y1."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=-1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def link(
    frames: np.ndarray, boxes: np.ndarray, scores: np.ndarray, min_iou: float = 0.3,
    max_gap: int = 6,
) -> np.ndarray:  # fmt: skip
    """Track id (K,) for each detection (frame index (K,), box (K, 4), score (K,))."""
    ids = np.full(len(frames), -1, np.int64)
    last_box: list[np.ndarray] = []
    last_frame: list[int] = []
    for f in np.unique(frames):
        rows = np.flatnonzero(frames == f)
        rows = rows[np.argsort(-scores[rows], kind="stable")]
        live = [t for t, lf in enumerate(last_frame) if f - lf <= max_gap]
        iou = box_iou(boxes[rows], np.array([last_box[t] for t in live]).reshape(-1, 4))
        taken: set[int] = set()
        for i, r in enumerate(rows):
            order: list[int] = list(np.argsort(-iou[i])) if live else []
            best = next((j for j in order if live[j] not in taken and iou[i, j] >= min_iou), None)
            if best is None:
                last_box.append(boxes[r])
                last_frame.append(int(f))
                ids[r] = len(last_box) - 1
            else:
                t = live[best]
                taken.add(t)
                last_box[t], last_frame[t], ids[r] = boxes[r], int(f), t
    return ids


@dataclass(frozen=True)
class TrackSummary:
    id: int
    frames: int  # frames with this face
    first: int
    last: int
    centre_x: float  # median box centre, as a share of the frame width
    height_px: float  # median box height

    def as_dict(self) -> dict[str, float | int]:
        return {
            "id": self.id, "frames": self.frames, "first": self.first, "last": self.last,
            "centre_x": round(float(self.centre_x), 3),
            "height_px": round(float(self.height_px), 1),
        }  # fmt: skip


def summarise(
    ids: np.ndarray, frames: np.ndarray, boxes: np.ndarray, width: int
) -> list[TrackSummary]:
    """One summary per track, longest first."""
    out = []
    for t in np.unique(ids):
        m = ids == t
        cx = np.median((boxes[m, 0] + boxes[m, 2]) / 2) / width
        h = np.median(boxes[m, 3] - boxes[m, 1])
        f = frames[m]
        out.append(TrackSummary(int(t), int(m.sum()), int(f.min()), int(f.max()), cx, h))
    return sorted(out, key=lambda s: -s.frames)
