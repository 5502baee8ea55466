"""The "Track Video" operator: video -> tracks (core, in a worker thread) -> one take of
keys on the face rig. In the UI it is modal (progress bar, status text, Esc cancels); under
`blender -b` or from a script, execute() runs to the end and prints progress lines (frame N
of M, frames per second) to the console. The scene is touched only once
tracking has succeeded, so an error or a cancel leaves it as it was."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy

from . import preferences
from .core.bundle import BundleError, ModelBundle
from .core.console_progress import ConsoleProgress
from .core.detect import DetectorConfig, DetectorError, FaceDetector
from .core.smoothing import OneEuroConfig
from .core.track import TrackingError, TrackSettings, track_video
from .core.tracks import Tracks, TracksError, blender_frame_rate
from .core.video import VideoError, sequence_files
from .keys import KeyingError, write_take
from .properties import RIG_KEY, is_face_rig
from .resources import DEFAULT_BUNDLE, DETECTOR_DIR

ERRORS = (
    BundleError,
    DetectorError,
    TrackingError,
    TracksError,
    KeyingError,
    VideoError,
    ValueError,
)


@dataclass
class TrackInputs:
    rig_name: str
    video: Path
    bundle: ModelBundle
    detector: FaceDetector
    settings: TrackSettings


def target_rig(context: bpy.types.Context) -> bpy.types.Object:
    """The panel's rig, else the active object; an error unless it is a face rig."""
    s = context.scene.aurt
    rig = s.target or context.active_object
    if rig is None:
        raise ValueError("no face rig: add one (Add Face Rig) or pick it as the target")
    if not is_face_rig(rig):
        raise ValueError(f"{rig.name!r} is not an AU Retarget face rig (no {RIG_KEY!r})")
    return rig


def bundle_path(context: bpy.types.Context) -> Path:
    s = context.scene.aurt
    if s.model == "FILE":
        if not s.model_path:
            raise ValueError("model is set to a bundle folder, but no folder is chosen")
        return Path(bpy.path.abspath(s.model_path))
    pref = preferences.get(context).model_path
    return Path(bpy.path.abspath(pref)) if pref else DEFAULT_BUNDLE


def prepare(context: bpy.types.Context) -> TrackInputs:
    """Check every input and load the models; raises one of ERRORS naming what is wrong."""
    s, prefs = context.scene.aurt, preferences.get(context)
    rig = target_rig(context)
    if rig.get("aurt_baked"):
        raise ValueError(
            f"rig {rig.name!r} is baked (its drivers are gone): undo the bake or add a new rig"
        )
    if not s.video:
        raise ValueError("no video file or image sequence chosen")
    video = Path(bpy.path.abspath(s.video))
    if sequence_files(video) is None and not video.is_file():  # a VideoError names a bad sequence
        raise ValueError(f"video file {video} does not exist")
    device = prefs.device if s.device == "PREFS" else s.device
    bundle = ModelBundle(bundle_path(context), rig[RIG_KEY], device, prefs.threads)
    detector = FaceDetector(DETECTOR_DIR, DetectorConfig(threads=prefs.threads, device=device))
    neutral: str | int | None = {"NONE": None, "AUTO": "auto"}.get(s.neutral, s.neutral_frame)
    settings = TrackSettings(
        start=s.video_start,
        stop=None if s.video_end < 0 else s.video_end + 1,
        step=s.video_step,
        smoothing=OneEuroConfig(s.min_cutoff, s.beta) if s.smoothing else None,
        missing=s.missing,
        neutral=neutral,
        crops=s.crops,
        sequence_fps=context.scene.render.fps / context.scene.render.fps_base,
    )
    settings.check()
    return TrackInputs(rig.name, video, bundle, detector, settings)


class TrackJob:
    """Runs `track_video` (in a thread for the UI); `cancel()` stops it at the next frame."""

    def __init__(self, inputs: TrackInputs, console: ConsoleProgress | None = None) -> None:
        self.inputs = inputs
        self.console = console
        self.done = self.total = 0
        self.cancelled = False
        self.result: Tracks | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def _progress(self, done: int, total: int) -> bool:
        self.done, self.total = done, total
        if self.console is not None:
            self.console(done, total)
        return not self.cancelled

    def run(self) -> None:
        i = self.inputs
        try:
            self.result = track_video(i.video, i.bundle, i.detector, i.settings, self._progress)
        except Exception as exc:  # reported by the operator on the main thread
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def finished(self) -> bool:
        return not self.thread.is_alive()


def apply(context: bpy.types.Context, job: TrackJob) -> str:
    """Key the finished job's tracks as one take; returns the summary for the report."""
    if job.error is not None:
        raise job.error
    assert job.result is not None
    i, scene = job.inputs, context.scene
    rig = bpy.data.objects.get(i.rig_name)
    if not is_face_rig(rig):
        raise ValueError(f"face rig {i.rig_name!r} was removed while tracking")
    rate = (scene.render.fps, scene.render.fps_base)
    if scene.aurt.set_scene_fps:
        rate = blender_frame_rate(job.result.fps)
    action, first, last = write_take(
        rig, job.result, i.bundle.card, i.video, scene.aurt.scene_start, rate[0] / rate[1]
    )
    report = job.result.report
    notes = "".join(f"; {n}" for n in report.notes)
    if (scene.render.fps, scene.render.fps_base) != rate:  # only once the keys are written
        scene.render.fps, scene.render.fps_base = rate
        notes += f"; scene frame rate set to {rate[0] / rate[1]:.5g} fps"
    return (
        f"Keyed {i.video.name} on {rig.name}: {len(job.result.frames)} frames "
        f"({report.summary()}), scene frames {first}-{last}, action {action.name!r}{notes}"
    )


class AURT_OT_track_video(bpy.types.Operator):
    """Track the video's face and key head pose, gaze and AUs on the face rig"""

    bl_idname = "aurt.track_video"
    bl_label = "Track Video"
    bl_options = {"REGISTER", "UNDO"}

    _job: TrackJob | None = None
    _timer: Any = None

    def _finish(self, context: bpy.types.Context, job: TrackJob) -> set[str]:
        try:
            self.report({"INFO"}, apply(context, job))
            return {"FINISHED"}
        except ERRORS as exc:
            cancelled = job.cancelled and isinstance(exc, TrackingError)
            self.report({"WARNING" if cancelled else "ERROR"}, f"{exc}; the scene is unchanged")
            return {"CANCELLED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            inputs = prepare(context)
        except ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        console = ConsoleProgress(inputs.video.name) if bpy.app.background else None
        job = TrackJob(inputs, console)
        job.run()
        return self._finish(context, job)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            self._job = TrackJob(prepare(context))
        except ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 1000)
        wm.modal_handler_add(self)
        self._job.start()
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        job = self._job
        assert job is not None
        if event.type == "ESC":
            job.cancel()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        wm = context.window_manager
        if job.total:
            wm.progress_update(int(1000 * job.done / job.total))
        note = "cancelling" if job.cancelled else "Esc to cancel"
        context.workspace.status_text_set(
            f"Tracking {job.inputs.video.name}: frame {job.done} of {job.total or '?'} ({note})"
        )
        if not job.finished:
            return {"RUNNING_MODAL"}
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)
        return self._finish(context, job)


def register() -> None:
    bpy.utils.register_class(AURT_OT_track_video)


def unregister() -> None:
    bpy.utils.unregister_class(AURT_OT_track_video)
