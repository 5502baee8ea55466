"""Video to per-frame parameter tracks: decode -> detect -> gate -> align -> infer -> smooth.

One face is followed: the largest at the start (or the one the user picks), then the
detection that overlaps the previous box. Where the crop of each frame comes from is the
setting `crops`:
- "landmarks" (bundles whose graph outputs F's landmarks and presence): as MediaPipe
  tracks, frame t+1 is aligned by the 5 points derived from frame t's landmarks
  (core/landmark_points.py), so each frame is inferred on its own, as it comes. MTCNN runs
  only to start, and on a frame whose steered crop F does not read as a face (presence
  below the quality gate's min_presence), whose points degenerate or which the gate
  refuses; such a frame counts as a re-detection (a cut for smoothing). A bundle without
  the landmarks output is tracked as "detector", silently.
- "detector": MTCNN on every frame, crops inferred in batches. Most frames only refine the
  previous box (RNet + ONet); the full detector runs when the track is lost.
Faces the regressor cannot
read (too small, unsure, rolled beyond the rig, upside down or sideways, or, for models
on the landmark network, not read as a face by it: core/face_quality.py) count as frames
without a face; the tracks' report says how many and why. The confidence column is the
model's face-presence probability where the model has one, else the detector's score.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .align import AlignmentError, align_face, crop_roll, transform_points
from .bundle import ModelBundle
from .detect import Detection, FaceDetector
from .face_quality import QualityConfig, QualityGate
from .landmark_points import LandmarkPointsError, frame_points
from .smoothing import OneEuroConfig, smooth_track
from .tracks import TrackReport, Tracks, calibrate_neutral, fill_missing
from .video import VideoError, open_frames

log = logging.getLogger(__name__)


CROP_MODES = ("landmarks", "detector")


class TrackingError(RuntimeError):
    """Tracking cannot produce a result (names the file and, where it applies, the frame)."""


@dataclass
class TrackSettings:
    start: int = 0
    stop: int | None = None
    step: int = 1
    smoothing: OneEuroConfig | None = field(default_factory=OneEuroConfig)
    missing: str = "none"  # frames without a face: "none" (no values), "hold", "interpolate"
    neutral: str | int | None = None  # None, "auto" (most neutral frame) or a frame index
    face: int = 0  # at the first frame with faces: 0 = the largest, 1 = next largest, ...
    batch: int = 32  # crops per inference in "detector" mode
    crops: str = "landmarks"  # where each crop comes from: CROP_MODES, module docstring
    quality: QualityConfig = field(default_factory=QualityConfig)
    sequence_fps: float | None = None  # an image sequence's frame rate (None: 30 fps)

    def check(self) -> None:
        """Refuse settings that cannot run (names the setting), before any work."""
        if self.start < 0:
            raise TrackingError(f"start frame must be >= 0, got {self.start}")
        if self.step < 1:
            raise TrackingError(f"frame step must be >= 1, got {self.step}")
        if self.stop is not None and self.stop <= self.start:
            raise TrackingError(f"end frame {self.stop - 1} is before start frame {self.start}")
        if self.face < 0:
            raise TrackingError(f"face must be >= 0 (0 = the largest), got {self.face}")
        if self.sequence_fps is not None and not self.sequence_fps > 0:
            raise TrackingError(f"sequence frame rate must be > 0, got {self.sequence_fps}")
        if self.batch < 1:
            raise TrackingError(f"batch must be >= 1, got {self.batch}")
        if self.crops not in CROP_MODES:
            raise TrackingError(f"crops must be landmarks or detector, got {self.crops!r}")
        if self.missing not in ("none", "hold", "interpolate"):
            raise TrackingError(f"missing must be none, hold or interpolate: {self.missing!r}")
        n = self.neutral
        if not (n is None or n == "auto" or (isinstance(n, int) and n >= 0)):
            raise TrackingError(f"neutral must be 'auto' or a frame index >= 0, got {n!r}")


class StageClock:
    """Seconds spent in each stage of a tracking run (decode, detect, align, infer, filter),
    for the benchmark; `lap` charges the time since the previous lap to a stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] += now - self._t
        self._t = now


def _area(box: np.ndarray) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / max(_area(a) + _area(b) - inter, 1e-9)


class FaceFollower:
    """Keeps one face across frames; reports when it had to re-detect (a possible cut)."""

    def __init__(self, detector: FaceDetector, pick: int = 0) -> None:
        self.detector, self.pick = detector, pick
        self.box: np.ndarray | None = None
        self.note: str | None = None  # set when the picked face is not there

    def __call__(self, image: np.ndarray) -> tuple[Detection | None, bool]:
        if self.box is not None:
            det = self.detector.refine(image, self.box)
            if det is not None:
                self.box = det.box
                return det, False
        dets = self.detector.detect(image)
        if not dets:
            return None, True
        if self.box is None:
            ranked = sorted(dets, key=lambda d: -_area(d.box))
            if self.pick >= len(ranked) and self.note is None:
                self.note = (
                    f"face {self.pick} asked for, but the first frame with faces has "
                    f"{len(ranked)}: following face {len(ranked) - 1} (the smallest)"
                )
            det = ranked[min(self.pick, len(ranked) - 1)]
        else:
            prev = self.box
            det = max(dets, key=lambda d: _iou(d.box, prev))
        self.box = det.box
        return det, True


@dataclass
class FrameReading:
    """One frame as the steering read it: values None when no face is kept (then `why` is
    the gate's reason, or None for no face found); `cut` when the detector gave the crop."""

    values: np.ndarray | None
    confidence: float
    cut: bool
    why: str | None = None


class CropSteering:
    """Crops aligned by the previous frame's landmark points; the detector (FaceFollower)
    where there are none or F loses the face in the steered crop (module docstring)."""

    def __init__(
        self, bundle: ModelBundle, follow: FaceFollower, gate: QualityGate, clock: StageClock
    ) -> None:
        self.bundle, self.follow, self.gate, self.clock = bundle, follow, gate, clock
        self.points: np.ndarray | None = None  # the next crop's 5 points, frame pixels
        self.detector_frames = 0  # frames on which MTCNN ran

    def __call__(self, image: np.ndarray) -> FrameReading:
        if self.points is not None:
            got = self._read(image, self.points, None, False)
            if got.values is not None:
                return got
        self.points = None
        det, redetected = self.follow(image)
        self.detector_frames += 1
        self.clock.lap("detect")
        if det is None:
            return FrameReading(None, 0.0, True)
        return self._read(image, det.points, det, redetected)

    def _read(
        self, image: np.ndarray, points: np.ndarray, det: Detection | None, new_track: bool
    ) -> FrameReading:
        cut = det is not None
        try:
            crop, m = align_face(image, points, self.bundle.input.size)
        except AlignmentError:  # degenerate points
            self.points = None
            return FrameReading(None, 0.0, cut)
        roll = crop_roll(m)
        if det is not None:
            why = self.gate.check(image, det, roll, new_track)
        else:
            why = self.gate.check_points(points, roll)
        self.clock.lap("align")
        if why is not None:
            self.points = None
            return FrameReading(None, 0.0, cut, why)
        values, presence, landmarks = self.bundle.read_all(
            crop[None], 1, crop_rolls=np.array([roll])
        )
        self.clock.lap("infer")
        assert presence is not None and landmarks is not None  # has_landmarks
        p = float(presence[0])
        self.points = None
        if p < self.gate.cfg.min_presence:  # F lost the face in this crop
            why = self.gate.check_presence(p)
            if why is not None or det is None:
                return FrameReading(None, 0.0, cut, why)
            return FrameReading(values[0], p, cut)  # the gate is off: keep the reading
        try:
            nxt = frame_points(landmarks[0], m)
        except LandmarkPointsError:
            nxt = None
        eyes = max(float(np.linalg.norm(points[1] - points[0])), 1e-9)
        # points that jump to half or twice the eye distance are taken as degenerate
        if nxt is not None and 0.5 < float(np.linalg.norm(nxt[1] - nxt[0])) / eyes < 2.0:
            self.points = nxt
            inverse = cv2.invertAffineTransform(m)
            xy = transform_points(inverse, landmarks[0, :, :2])
            self.follow.box = np.concatenate([xy.min(0), xy.max(0)])
        self.clock.lap("align")
        return FrameReading(values[0], p, cut)


def track_video(
    video: str | Path,
    bundle: ModelBundle,
    detector: FaceDetector,
    settings: TrackSettings | None = None,
    progress: Callable[[int, int], bool] | None = None,
    clock: StageClock | None = None,
) -> Tracks:
    """Parameter tracks for the frames of `video`; `progress(done, total)` may return
    False to cancel (a TrackingError says so; nothing is half-written). `clock` collects
    the time per stage."""
    s = settings or TrackSettings()
    s.check()
    clock = clock if clock is not None else StageClock()
    size = bundle.input.size
    frames: list[int] = []
    times: list[float] = []
    cuts: set[int] = set()
    conf: list[float] = []  # the model's face presence where it has one, else the detector's
    valid: list[bool] = []
    rows: dict[int, np.ndarray] = {}  # row -> parameters (detector mode: in batches)
    pending: list[tuple[int, np.ndarray, float]] = []  # row, crop, crop roll

    def flush() -> None:
        if pending:
            clock.lap("align")
            rolls = np.array([roll for _, _, roll in pending])
            out, presence = bundle.read(
                np.stack([c for _, c, _ in pending]), s.batch, crop_rolls=rolls
            )
            rows.update({r: v for (r, _, _), v in zip(pending, out, strict=True)})
            if presence is not None:  # F's own reading of the crop: the confidence column
                for (r, _, _), p in zip(pending, presence, strict=True):
                    conf[r] = float(p)
                    why = gate.check_presence(float(p))
                    if why is not None:
                        valid[r], conf[r] = False, 0.0
                        report.dropped[why] = report.dropped.get(why, 0) + 1
            pending.clear()
            clock.lap("infer")

    try:
        reader = open_frames(video, s.sequence_fps)
    except VideoError as exc:
        raise TrackingError(str(exc)) from exc
    report = TrackReport()
    with reader:
        info = reader.info
        stop = min(s.stop if s.stop is not None else info.frame_count, info.frame_count)
        total = max(0, -(-(stop - s.start) // s.step))
        if s.start >= info.frame_count:
            raise TrackingError(
                f"start frame {s.start} is beyond the end of {video} ({info.frame_count} frames)"
            )
        if isinstance(s.neutral, int) and s.neutral not in range(s.start, stop, s.step):
            raise TrackingError(
                f"neutral frame {s.neutral} is not among the tracked frames of {video} "
                f"({s.start}..{stop - 1} step {s.step})"
            )
        follow = FaceFollower(detector, s.face)
        lo_hi = bundle.card.get("ranges", {}).get("head_roll", (-30.0, 30.0))
        gate = QualityGate(detector, (float(lo_hi[0]), float(lo_hi[1])), s.quality)
        steer = CropSteering(bundle, follow, gate, clock)
        steering = s.crops == "landmarks" and bundle.has_landmarks

        def steered_frame(image: np.ndarray) -> None:
            got = steer(image)
            if got.why is not None:
                report.dropped[got.why] = report.dropped.get(got.why, 0) + 1
            valid.append(got.values is not None)
            conf.append(got.confidence)
            if got.values is not None:
                rows[len(frames) - 1] = got.values
                if got.cut:
                    cuts.add(len(frames) - 1)

        def detector_frame(image: np.ndarray) -> None:
            det, redetected = follow(image)
            steer.detector_frames += 1
            clock.lap("detect")
            why = None
            if det is not None:
                crop, m = align_face(image, det.points, size)
                roll = crop_roll(m)
                why = gate.check(image, det, roll, redetected)
                if why is not None:
                    report.dropped[why] = report.dropped.get(why, 0) + 1
            if det is None or why is not None:
                valid.append(False)
                conf.append(0.0)
            else:
                if redetected:
                    cuts.add(len(frames) - 1)
                valid.append(True)
                conf.append(det.score)
                pending.append((len(frames) - 1, crop, roll))
                if len(pending) >= s.batch:  # memory stays flat however long the video
                    flush()
            clock.lap("align")

        try:
            clock.lap("open")
            for k, (idx, t, image) in enumerate(reader.frames(s.start, stop, s.step)):
                clock.lap("decode")
                frames.append(idx)
                times.append(t)
                if steering:
                    steered_frame(image)
                else:
                    detector_frame(image)
                if progress is not None and progress(k + 1, total) is False:
                    raise TrackingError(f"tracking {video} cancelled at frame {idx}")
                clock.lap("progress")
        except VideoError as exc:
            raise TrackingError(str(exc)) from exc
        if reader.decoded_to < stop - max(1, stop // 100):
            report.notes.append(
                f"{video} ended at frame {reader.decoded_to} of the {info.frame_count} its "
                "header announces: the file may be cut short (a partial download?)"
            )
        if reader.untimed:
            report.notes.append(
                f"{video}: {reader.untimed} frames without a usable timestamp, timed by "
                "the frame rate"
            )
    if follow.note:
        report.notes.append(follow.note)
    if not frames:
        raise TrackingError(f"video {video} has no frames in {s.start}..{stop} step {s.step}")
    flush()
    clock.lap("align")
    ok = np.array(valid)
    if not ok.any():
        from .face_quality import REASONS

        why = ", ".join(f"{n} {REASONS[r]}" for r, n in sorted(report.dropped.items()))
        raise TrackingError(
            f"no face found in any of the {len(frames)} frames of {video}"
            + (f" that the regressor can read (refused: {why})" if why else "")
        )
    report.detected = int(ok.sum())
    report.detector_frames = steer.detector_frames
    values = np.full((len(frames), len(bundle.names)), np.nan)
    for r, v in rows.items():
        if valid[r]:
            values[r] = v
    tracks = Tracks(
        np.array(frames), np.array(times), list(bundle.names), values, np.array(conf), info.fps,
        report,
    )  # fmt: skip
    if s.smoothing is not None:
        tracks.values = smooth_track(tracks.times, values, ok, s.smoothing, cuts)
    if s.neutral is not None:
        calibrate_neutral(tracks, bundle.card, s.neutral)
    tracks = fill_missing(tracks, s.missing)
    clock.lap("filter")
    return tracks
