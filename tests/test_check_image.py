"""Check images of a tracked frame: the core composition on the real sample video with the
real MTCNN, and the add-on's "Write Check Image" operator in real Blender."""

from __future__ import annotations

import tempfile

import cv2
import numpy as np
import pytest

from au_retarget_addon.core.align import align_face
from au_retarget_addon.core.check_image import (
    BACKGROUND,
    BOX_RGB,
    GAP,
    LABEL_HEIGHT,
    CheckImageError,
    crop_scale,
    face_check,
    panel_rects,
    read_check_frame,
    write_check_image,
)
from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from au_retarget_addon.core.track import FaceFollower
from au_retarget_addon.core.video import open_frames
from tests import test_addon
from tests.conftest import MEDIA, TINY_SIZE
from tests.test_addon import _module, _param_curves, _setup_take

addon_zip, addon = test_addon.addon_zip, test_addon.addon  # the add-on's fixtures

VIDEO = MEDIA / "single_face.mp4"
SIZE = TINY_SIZE


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module")
def frame(detector):
    return read_check_frame(VIDEO, 5, detector, SIZE, start=2)


def test_frame_detection_and_crop_are_trackings(frame, detector):
    with open_frames(VIDEO) as reader:
        read = list(reader.frames(2, 6))
    (_, t0, _), (idx, t5, image) = read[0], read[-1]
    assert idx == frame.index == 5 and frame.time == pytest.approx(t5 - t0)
    assert np.array_equal(frame.image, image)
    det, _ = FaceFollower(detector)(image)  # tracking's first-frame pick
    assert det is not None and np.allclose(det.box, frame.detection.box)
    crop, m = align_face(image, frame.detection.points, SIZE)  # what track_video feeds
    assert frame.crop.shape == (SIZE, SIZE, 3)
    assert np.array_equal(frame.crop, crop) and np.allclose(frame.matrix, m)


def test_composed_image_has_three_panels_exact_crop_and_the_box(frame):
    rig = np.random.default_rng(0).integers(0, 255, (100, 80, 3), dtype=np.uint8)
    labels = ["video frame 5", "crop", "rig"]
    out = face_check(frame.image, frame.detection, frame.crop, rig, labels)
    rects = panel_rects(frame.image.shape, frame.crop.shape, rig.shape)
    k = crop_scale(SIZE)
    assert len(rects) == 3 and all(r[3] == SIZE * k for r in rects)
    (fx, fy, fw, fh), (cx, cy, cw, ch), (rx, ry, rw, rh) = rects
    assert out.shape == (LABEL_HEIGHT + fh + GAP, rx + rw + GAP, 3)
    # the crop panel is the crop, pixel for pixel
    panel = out[cy : cy + ch, cx : cx + cw]
    assert np.array_equal(panel[::k, ::k], frame.crop)
    assert np.array_equal(panel, np.repeat(np.repeat(frame.crop, k, 0), k, 1))
    # the rig panel is the render, scaled to the panel height
    assert (rw, rh) == (round(80 * rh / 100), rh)
    ref = cv2.resize(rig, (rw, rh), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(out[ry : ry + rh, rx : rx + rw], ref)
    # panels are apart, each has a label above it
    for x, _, w, _ in rects:
        assert (out[fy:, x - GAP : x] == BACKGROUND).all()
        assert (out[:LABEL_HEIGHT, x : x + w] != BACKGROUND).any()
    # the drawing changes the frame only around the detection's box, scaled to the panel
    s = fw / frame.image.shape[1]
    plain = cv2.resize(frame.image, (fw, fh), interpolation=cv2.INTER_AREA)
    drawn = out[fy : fy + fh, fx : fx + fw]
    ys, xs = np.nonzero((drawn != plain).any(axis=2))
    x1, y1, x2, y2 = (frame.detection.box + 0.5) * s - 0.5
    assert abs(xs.min() - x1) <= 3 and abs(xs.max() - x2) <= 3
    assert abs(ys.min() - y1) <= 3 and abs(ys.max() - y2) <= 3
    edge = drawn[int(round((y1 + y2) / 2)), int(round(x1)) - 1 : int(round(x1)) + 2]
    assert (edge == BOX_RGB).all(axis=1).any()
    for px, py in np.round((frame.detection.points + 0.5) * s - 0.5).astype(int):
        assert (drawn[py, px] != plain[py, px]).any()  # a point is drawn on each


def test_without_rig_two_panels_and_labels_must_match(frame, tmp_path):
    out = face_check(frame.image, frame.detection, frame.crop, None, ["frame", "crop"])
    rects = panel_rects(frame.image.shape, frame.crop.shape, None)
    assert len(rects) == 2 and out.shape[1] == rects[1][0] + rects[1][2] + GAP
    with pytest.raises(ValueError, match="2 panels need 2 labels"):
        face_check(frame.image, frame.detection, frame.crop, None, ["frame", "crop", "rig"])
    path = write_check_image(tmp_path / "check.png", out)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, out)
    with pytest.raises(CheckImageError, match=r"check\.jpg.*\.png"):
        write_check_image(tmp_path / "check.jpg", out)


def test_frames_without_a_face_or_out_of_range_are_clear_errors(detector):
    with pytest.raises(CheckImageError, match=r"no face found in frame 3 of .*no_face\.mp4"):
        read_check_frame(MEDIA / "no_face.mp4", 3, detector, SIZE)
    with pytest.raises(CheckImageError, match=r"frame 500 is beyond the end of .*\(72 frames"):
        read_check_frame(VIDEO, 500, detector, SIZE)
    with pytest.raises(CheckImageError, match="frame 1 is before the first tracked frame 4"):
        read_check_frame(VIDEO, 1, detector, SIZE, start=4)


# --- the operator, in real Blender --------------------------------------------------------


def _state(bpy) -> tuple:
    """What a check image must leave as it was: data, render settings, frame, pose."""
    scene = bpy.context.scene
    r, cy = scene.render, scene.cycles
    data = tuple(
        sorted(b.name for b in getattr(bpy.data, kind))
        for kind in ("objects", "scenes", "worlds", "cameras", "lights", "materials", "actions")
    )
    settings = (
        r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.filepath,
        r.image_settings.file_format, r.image_settings.color_mode,
        scene.view_settings.view_transform, cy.samples, cy.device, cy.max_bounces,
        scene.camera, scene.world, scene.frame_current, scene.frame_start, scene.frame_end,
    )  # fmt: skip
    emission = tuple(
        tuple(m.node_tree.nodes["Principled BSDF"].inputs[n].default_value[:]
              if n == "Emission Color"
              else [m.node_tree.nodes["Principled BSDF"].inputs[n].default_value])
        for m in bpy.data.materials
        for n in ("Emission Color", "Emission Strength")
    )  # fmt: skip
    rig = scene.aurt.target
    pose = tuple(float(rig[k]) for k in ("head_yaw", "head_pitch", "AU12_L")) if rig else ()
    return data, settings, emission, pose


@pytest.mark.blender
def test_check_image_beside_the_blend_and_scene_unchanged(addon, tmp_path):
    bpy = addon
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    rig = _setup_take(bpy, end=2)
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    yaw = _param_curves(bpy, rig)['["head_yaw"]']
    assert [kp.co[0] for kp in yaw.keyframe_points] == [1.0, 2.0, 3.0]
    yaw.keyframe_points[2].co[1] = 30.0  # video frame 2 -> scene frame 3: head turned
    yaw.update()
    ops = _module("check_operator")
    assert ops.output_path("", "single_face", 2).parent.samefile(tempfile.gettempdir())
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
    scene.frame_set(0)  # the pose of scene frame 1: the render must not keep frame 3's
    scene.aurt.check_frame = 2
    before = _state(bpy)
    assert bpy.ops.aurt.check_image(height=128) == {"FINISHED"}
    assert _state(bpy) == before
    path = tmp_path / "single_face_check_0002.png"
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    with open_frames(VIDEO) as reader:
        shape = (reader.info.height, reader.info.width, 3)
    k = crop_scale(SIZE, 128)
    rects = panel_rects(shape, (SIZE, SIZE, 3), (SIZE * k, SIZE * k, 3), 128)
    assert img.shape == (LABEL_HEIGHT + SIZE * k + GAP, rects[-1][0] + rects[-1][2] + GAP, 3)
    rx, ry, rw, rh = rects[2]
    rig_panel = img[ry : ry + rh, rx : rx + rw]
    assert rig_panel.std() > 5, "the rig render is blank"
    loaded = [i for i in bpy.data.images if bpy.path.abspath(i.filepath) == str(path)]
    assert len(loaded) == 1 and tuple(loaded[0].size) == (img.shape[1], img.shape[0])
    # the rig shows the pose keyed for each video frame: the turned head on frame 2 only
    scene.aurt.check_frame = 0
    out = tmp_path / "checks"
    out.mkdir()
    assert bpy.ops.aurt.check_image(filepath=str(out), height=128) == {"FINISHED"}
    first = cv2.imread(str(out / "single_face_check_0000.png"))[ry : ry + rh, rx : rx + rw]
    assert np.abs(first.astype(int) - rig_panel[..., ::-1]).mean() > 5
    assert _state(bpy) == before


@pytest.mark.blender
def test_check_image_errors_leave_the_scene(addon, tmp_path):
    bpy = addon
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    _setup_take(bpy, end=2)
    before = _state(bpy)
    with pytest.raises(RuntimeError, match="has no take: track a video first"):
        bpy.ops.aurt.check_image(filepath=str(tmp_path / "c.png"), height=64)
    assert _state(bpy) == before
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    before = _state(bpy)
    for frame, expect in [
        (500, r"frame 500 is beyond the end of .*single_face\.mp4"),
        (10, "video frame 10 of single_face.mp4 lands on scene frame 11, outside take"),
    ]:
        scene.aurt.check_frame = frame
        with pytest.raises(RuntimeError, match=expect):
            bpy.ops.aurt.check_image(filepath=str(tmp_path / "c.png"), height=64)
        assert _state(bpy) == before
    assert not list(tmp_path.iterdir()) and not bpy.data.images.get("c.png")
