"""The Blender add-on as a user gets it: the extension zip is built with Blender's own
tool, installed into a private Blender user folder, enabled, and driven through its
operators on the real sample video (real rig, real MTCNN and ONNX model, real keys)."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests import bad_media
from tests.conftest import MEDIA

pytestmark = pytest.mark.blender
ADDON = "bl_ext.user_default.au_retarget"
VIDEO = MEDIA / "single_face.mp4"  # 30 fps, one face in every frame


@pytest.fixture(scope="session")
def addon_zip(tiny_bundle, tmp_path_factory) -> Path:
    from au_retarget_addon.packaging import build

    out = tmp_path_factory.mktemp("dist")
    (path,) = build(out, ["linux-x64"], onnxruntime="cpu", model=tiny_bundle)
    return path


@pytest.fixture
def addon(addon_zip):
    """bpy with the built extension installed and enabled, as a user would, in a factory
    scene. It uses the session's private Blender user folder (set in conftest before bpy
    is imported): Blender binds the extension repositories' import path at import time, so
    a per-test folder would install where `bl_ext` does not look."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(
        filepath=str(addon_zip), repo="user_default", enable_on_install=True
    )
    assert ADDON in bpy.context.preferences.addons, "the extension did not enable"
    yield bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _module(name: str):
    return sys.modules[f"{ADDON}.{name}"]


def _setup_take(bpy, end: int = 8) -> object:
    bpy.ops.aurt.add_face_rig()
    s = bpy.context.scene.aurt
    s.video, s.video_start, s.video_end = str(VIDEO), 0, end
    return s.target


def _param_curves(bpy, rig) -> dict:
    from bpy_extras import anim_utils

    ad = rig.animation_data
    bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
    return {fc.data_path: fc for fc in bag.fcurves}


def _scene_state(bpy) -> tuple:
    objs = sorted(o.name for o in bpy.data.objects)
    anim = sorted(o.name for o in bpy.data.objects if o.animation_data and o.animation_data.action)
    keys = sorted(
        (a.name, fc.data_path, fc.array_index, len(fc.keyframe_points))
        for a in bpy.data.actions
        for fc in _all_fcurves(a)
    )
    frame = bpy.context.scene.frame_current
    return objs, sorted(a.name for a in bpy.data.actions), anim, keys, frame


def _all_fcurves(action) -> list:
    return [fc for layer in action.layers for strip in layer.strips
            for bag in strip.channelbags for fc in bag.fcurves]  # fmt: skip


def test_zip_holds_code_rig_models_and_platform_wheels(addon_zip):
    names = set(zipfile.ZipFile(addon_zip).namelist())
    for need in (
        "blender_manifest.toml",
        "__init__.py",
        "core/track.py",
        "rigs/builder.py",
        "rigs/face_spec.py",
        "models/default/model.onnx",
        "models/default/model_card.json",
        "models/mtcnn/onet.onnx",
        "mappings/arkit.toml",
    ):
        assert need in names, need
    assert "packaging.py" not in names
    wheels = sorted(n for n in names if n.startswith("wheels/"))
    assert [w.split("/")[1].split("-")[0] for w in wheels] == [
        "onnxruntime",
        "opencv_python_headless",
    ]
    manifest = zipfile.ZipFile(addon_zip).read("blender_manifest.toml").decode()
    assert 'platforms = ["linux-x64"]' in manifest and "./wheels/onnxruntime-" in manifest
    assert addon_zip.name == "au_retarget-0.1.0-linux-x64.zip"


def test_enable_registers_panel_operators_and_preferences(addon):
    bpy = addon
    assert bpy.types.VIEW3D_PT_aurt_main.bl_category == "AU Retarget"
    for op in ("add_face_rig", "track_video", "push_take_to_nla", "bake_keys", "retarget"):
        cls = getattr(bpy.types, f"AURT_OT_{op}")
        assert "UNDO" in cls.bl_options, op  # one undo step per run: undo removes a whole take
    prefs = bpy.context.preferences.addons[ADDON].preferences
    assert (prefs.model_path, prefs.device, prefs.threads) == ("", "auto", 0)
    assert bpy.context.scene.aurt.model == "DEFAULT"
    # every setting has a tooltip
    for owner in (bpy.context.scene.aurt, prefs):
        props = [
            p
            for p in owner.bl_rna.properties
            if p.identifier not in ("rna_type", "name", "bl_idname")
        ]
        assert props and not [p.identifier for p in props if not p.description]


def test_track_keys_every_parameter_rerun_replaces_bake_and_export(addon, tmp_path):
    bpy = addon
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0  # the video's rate: one key per frame
    rig = _setup_take(bpy, end=8)
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    assert rig.animation_data.action.name == "single_face"
    curves = _param_curves(bpy, rig)
    spec = _module("resources").rigs_module("spec").load_spec()
    keyed = [p for p in spec.params if p.group in ("pose", "gaze", "au")]
    assert len(curves) == len(keyed) == 39
    for p in keyed:
        co = np.array([kp.co[:] for kp in curves[f'["{p.name}"]'].keyframe_points])
        assert list(co[:, 0]) == list(range(1, 10)), p.name  # scene start 1, video frames 0..8
        assert {kp.interpolation for kp in curves[f'["{p.name}"]'].keyframe_points} == {"LINEAR"}
        assert (co[:, 1] >= p.min - 1e-6).all() and (co[:, 1] <= p.max + 1e-6).all(), p.name
    first = curves['["head_yaw"]'].keyframe_points[0].co[1]

    # running again on part of the range replaces the keys there, in the same action
    scene.aurt.video_start, scene.aurt.video_end, scene.aurt.scene_start = 2, 4, 3
    scene.aurt.smoothing = False
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    assert len([a for a in bpy.data.actions if a.get("aurt_take")]) == 1
    frames = [kp.co[0] for kp in _param_curves(bpy, rig)['["head_yaw"]'].keyframe_points]
    assert frames == [float(f) for f in range(1, 10)]
    assert _param_curves(bpy, rig)['["head_yaw"]'].keyframe_points[0].co[1] == first

    # bake: bone keys, no drivers, and the mesh moves the same way without them
    mesh = bpy.data.objects[rig["aurt_mesh"]]
    scene.frame_set(5)
    before = np.array(
        [v.co[:] for v in mesh.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.vertices]
    )
    assert bpy.ops.aurt.bake_keys() == {"FINISHED"}
    assert rig.animation_data.action.name == "single_face_baked"
    assert len(rig.animation_data.drivers) == 0
    bones = {fc.data_path.split('"')[1] for fc in _param_curves(bpy, rig).values()}
    assert "jaw" in bones or len(bones) > 10
    scene.frame_set(1)
    scene.frame_set(5)
    after = np.array(
        [v.co[:] for v in mesh.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.vertices]
    )
    assert np.abs(after - before).max() < 1e-4
    with pytest.raises(RuntimeError, match="baked"):  # tracking onto a baked rig is refused
        bpy.ops.aurt.track_video()

    # export: glTF holds the animation on the rig's joints
    out = tmp_path / "take.gltf"
    bpy.ops.export_scene.gltf(filepath=str(out), export_format="GLTF_SEPARATE")
    gltf = json.loads(out.read_text())
    anims = gltf.get("animations", [])
    assert anims, "no animation in the glTF file"
    joints = {gltf["nodes"][c["target"]["node"]]["name"] for a in anims for c in a["channels"]}
    assert len(joints) > 10 and joints <= {b.name for b in rig.data.bones}


def test_scene_frames_follow_video_time_when_rates_differ(addon):
    bpy = addon
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 60, 1.0  # twice the video's 30 fps
    rig = _setup_take(bpy, end=5)
    scene.aurt.scene_start = 10
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    frames = [kp.co[0] for kp in _param_curves(bpy, rig)['["AU12_L"]'].keyframe_points]
    assert frames == [10.0, 12.0, 14.0, 16.0, 18.0, 20.0]
    assert _scene_state(bpy)[3], "the scene state sees no keys"


def test_set_scene_frame_rate_keys_every_video_frame(addon, capfd):
    bpy = addon
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    rig = _setup_take(bpy, end=5)
    scene.aurt.set_scene_fps = True
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    assert (scene.render.fps, scene.render.fps_base) == (30, 1.0)  # the video's rate
    frames = [kp.co[0] for kp in _param_curves(bpy, rig)['["AU12_L"]'].keyframe_points]
    assert frames == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # under `blender -b` (as the bpy module runs) tracking prints progress lines
    lines = [ln for ln in capfd.readouterr().out.splitlines() if ln.startswith("Tracking")]
    assert lines and re.fullmatch(
        r"Tracking single_face\.mp4: frame 6 of 6 \(\d+\.\d frames/s\)", lines[-1]
    )


def test_track_an_image_sequence_at_the_scene_rate(addon, tmp_path):
    import cv2

    bpy = addon
    folder = tmp_path / "shot_a"
    folder.mkdir()
    cap = cv2.VideoCapture(str(VIDEO))
    for i in range(4):
        ok, bgr = cap.read()
        cv2.imwrite(str(folder / f"frame_{i + 1:04d}.png"), bgr)
    cap.release()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    rig = _setup_take(bpy, end=-1)
    scene.aurt.video = str(folder / "frame_0001.png")  # one image stands for its sequence
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    assert rig.animation_data.action.name == "shot_a"
    frames = [kp.co[0] for kp in _param_curves(bpy, rig)['["AU12_L"]'].keyframe_points]
    assert frames == [1.0, 2.0, 3.0, 4.0]  # one image per scene frame
    assert scene.render.fps == 24


def test_variable_frame_rate_video_keys_at_its_frame_times(addon, tmp_path):
    """A frame's scene frame comes from its timestamp in the container, not from its
    index over the average frame rate."""
    bpy = addon
    video, times = bad_media.variable_rate(tmp_path / "vfr.mp4", [33] * 3 + [100] * 3)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    rig = _setup_take(bpy, end=-1)
    scene.aurt.video, scene.aurt.scene_start = str(video), 1
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    frames = [kp.co[0] for kp in _param_curves(bpy, rig)['["AU12_L"]'].keyframe_points]
    assert frames == [1 + round(t * 30) for t in times] == [1, 2, 3, 4, 7, 10, 13]


def test_cancel_part_way_leaves_scene_unchanged(addon):
    bpy = addon
    _setup_take(bpy, end=-1)
    state = _scene_state(bpy)
    ops = _module("track_operator")
    job = ops.TrackJob(ops.prepare(bpy.context))
    job.start()
    deadline = time.time() + 60
    while job.done < 3 and not job.finished and time.time() < deadline:
        time.sleep(0.005)
    job.cancel()
    job.thread.join(60)
    assert job.finished and 3 <= job.done < 72
    with pytest.raises(Exception, match="cancelled"):
        ops.apply(bpy.context, job)
    assert _scene_state(bpy) == state


def _corrupt_bundle(tmp_path: Path, tiny_bundle: Path) -> Path:
    bad = tmp_path / "corrupt.aurt"
    bad.mkdir()
    (bad / "model_card.json").write_text((tiny_bundle / "model_card.json").read_text())
    (bad / "model.onnx").write_bytes(b"not an onnx graph")
    return bad


def _bundle_with_card(tmp_path: Path, tiny_bundle: Path, change) -> Path:
    bad = tmp_path / "card.aurt"
    shutil.copytree(tiny_bundle, bad)
    card = json.loads((bad / "model_card.json").read_text())
    (bad / "model_card.json").write_text(json.dumps(change(card)))
    return bad


BAD_INPUTS = {
    "no_video": "no video file",
    "missing_file": "nothing.mp4",
    "folder_video": "is a folder that holds no images",
    "no_face": "no face",
    "upside_down": "upside down",
    "corrupt_bundle": "model.onnx",
    "null_card": "not a model card",
    "string_size": "input.size",
    "other_rig": "trained for rig spec",
    "not_a_rig": "Cube",
    "end_before_start": "end frame 2 is before start frame 5",
    "neutral_beyond": "neutral frame 500 is not among the tracked frames",
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_reports_error_and_leaves_scene(addon, tiny_bundle, tmp_path, case):
    bpy = addon
    rig = _setup_take(bpy, end=8)
    bpy.context.scene.frame_current = 7
    s = bpy.context.scene.aurt
    expect = BAD_INPUTS[case]
    if case == "no_video":
        s.video = ""
    elif case == "missing_file":
        s.video = str(tmp_path / "nothing.mp4")
    elif case == "folder_video":
        (tmp_path / "clip.mp4").mkdir()
        s.video = str(tmp_path / "clip.mp4")
    elif case == "no_face":
        s.video, s.video_end = str(MEDIA / "no_face.mp4"), 10
    elif case == "upside_down":
        s.video = str(bad_media.upside_down(tmp_path / "upside_down.avi", 8))
    elif case == "corrupt_bundle":
        s.model, s.model_path = "FILE", str(_corrupt_bundle(tmp_path, tiny_bundle))
    elif case in ("null_card", "string_size", "other_rig"):
        change = {
            "null_card": lambda c: None,
            "string_size": lambda c: {**c, "input": {**c["input"], "size": "64"}},
            "other_rig": lambda c: {**c, "spec_hash": "0" * 64},
        }[case]
        s.model, s.model_path = "FILE", str(_bundle_with_card(tmp_path, tiny_bundle, change))
    elif case == "end_before_start":
        s.video_start, s.video_end = 5, 2
    elif case == "neutral_beyond":
        s.neutral, s.neutral_frame = "FRAME", 500
    else:
        bpy.ops.mesh.primitive_cube_add()
        s.target = None
        bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
    state = _scene_state(bpy)
    with pytest.raises(RuntimeError, match=expect):
        bpy.ops.aurt.track_video()
    assert _scene_state(bpy) == state
    assert rig.animation_data is None or rig.animation_data.action is None


ARKIT_NAMES = [
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward",
    "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft",
    "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
    "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
]  # fmt: skip


def _mesh_with_shape_keys(bpy, names: list[str]) -> object:
    """A plane with a Basis and the named shape keys, as a retarget target."""
    bpy.ops.mesh.primitive_plane_add()
    mesh = bpy.context.active_object
    mesh.shape_key_add(name="Basis")
    for name in names:
        mesh.shape_key_add(name=name)
    return mesh


def test_retarget_to_arkit_shape_keys(addon):
    bpy = addon
    bpy.context.scene.render.fps = 30
    rig = _setup_take(bpy, end=5)
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    head = _mesh_with_shape_keys(bpy, ARKIT_NAMES)
    s = bpy.context.scene.aurt
    s.target, s.retarget_target = rig, head
    assert bpy.ops.aurt.retarget() == {"FINISHED"}
    key = head.data.shape_keys
    curves = {fc.data_path: fc for fc in _param_curves(bpy, key).values()}
    assert len(curves) == 52
    for name in ARKIT_NAMES:
        fc = curves[f'key_blocks["{name}"].value']
        co = np.array([kp.co[:] for kp in fc.keyframe_points])
        assert (
            list(co[:, 0]) == list(range(1, 7)) and (co[:, 1] >= 0).all() and (co[:, 1] <= 1).all()
        )
    # the mapping's arithmetic, on the rig's own keys: jawOpen = AU26, browInnerUp = mean AU1
    rc = _param_curves(bpy, rig)
    for f in range(1, 7):
        au26 = rc['["AU26"]'].evaluate(f)
        au1 = (rc['["AU1_L"]'].evaluate(f) + rc['["AU1_R"]'].evaluate(f)) / 2
        assert curves['key_blocks["jawOpen"].value'].evaluate(f) == pytest.approx(
            min(max(au26, 0), 1), abs=1e-5
        )
        assert curves['key_blocks["browInnerUp"].value'].evaluate(f) == pytest.approx(au1, abs=1e-5)


def test_a_baked_take_still_retargets(addon):
    bpy = addon
    bpy.context.scene.render.fps = 30
    rig = _setup_take(bpy, end=4)
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    head = _mesh_with_shape_keys(bpy, ["jawOpen"])
    s = bpy.context.scene.aurt
    s.target, s.retarget_target = rig, head
    assert bpy.ops.aurt.retarget() == {"FINISHED"}
    (fc,) = _param_curves(bpy, head.data.shape_keys).values()
    before = [kp.co[:] for kp in fc.keyframe_points]
    s.target = rig
    assert bpy.ops.aurt.bake_keys() == {"FINISHED"}
    assert rig.animation_data.action.name == "single_face_baked"
    # the baked action keys bones only; retargeting reads the take it was baked from
    assert bpy.ops.aurt.retarget() == {"FINISHED"}
    (fc,) = _param_curves(bpy, head.data.shape_keys).values()
    after = [kp.co[:] for kp in fc.keyframe_points]
    assert before == after and len(after) == 5
    assert head.data.shape_keys.animation_data.action.name.startswith("single_face_Plane")
    # with the take deleted, the error names it
    bpy.data.actions.remove(bpy.data.actions["single_face"])
    with pytest.raises(RuntimeError, match="single_face.*no longer exists"):
        bpy.ops.aurt.retarget()


def test_takes_as_nla_strips_blend_bake_and_retarget(addon, tmp_path):
    bpy = addon
    scene = bpy.context.scene
    scene.render.fps = 30
    rig = _setup_take(bpy, end=4)  # take A: video frames 0-4 on scene frames 1-5
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    take_a = rig.animation_data.action
    a26 = {f: read_fcurve(take_a, "AU26").evaluate(f) for f in range(1, 6)}
    assert bpy.ops.aurt.push_take_to_nla() == {"FINISHED"}
    ad = rig.animation_data
    assert ad.action is None and [t.name for t in ad.nla_tracks] == ["single_face"]
    strip = ad.nla_tracks["single_face"].strips[0]
    assert (strip.frame_start, strip.frame_end) == (1.0, 5.0) and strip.action == take_a
    second = tmp_path / "second.mp4"  # take B: another clip, on scene frames 20-24
    shutil.copy(VIDEO, second)
    s = scene.aurt
    s.video, s.video_start, s.video_end, s.scene_start = str(second), 30, 34, 20
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    take_b = rig.animation_data.action
    b26 = {f: read_fcurve(take_b, "AU26").evaluate(f) for f in range(20, 25)}
    a_yaw = read_fcurve(take_a, "head_yaw").evaluate(3)  # the takes' head turns differ
    assert abs(a_yaw - read_fcurve(take_b, "head_yaw").evaluate(20)) > 1e-3
    assert bpy.ops.aurt.push_take_to_nla() == {"FINISHED"}
    assert [t.name for t in ad.nla_tracks] == ["single_face", "second"]
    # the strips play: frame 3 shows take A, frame 22 take B
    scene.frame_set(3)
    assert rig["AU26"] == pytest.approx(a26[3], abs=1e-6)
    assert rig["head_yaw"] == pytest.approx(a_yaw, abs=1e-6)  # take B does not hold back over A
    scene.frame_set(22)
    assert rig["AU26"] == pytest.approx(b26[22], abs=1e-6)
    # retarget reads every frame the strips cover
    head = _mesh_with_shape_keys(bpy, ["jawOpen"])
    s.target, s.retarget_target = rig, head
    assert bpy.ops.aurt.retarget() == {"FINISHED"}
    (jaw,) = _param_curves(bpy, head.data.shape_keys).values()
    assert [kp.co[0] for kp in jaw.keyframe_points] == [float(f) for f in range(1, 25)]
    assert jaw.evaluate(3) == pytest.approx(min(max(a26[3], 0), 1), abs=1e-5)
    assert jaw.evaluate(22) == pytest.approx(min(max(b26[22], 0), 1), abs=1e-5)
    # a muted track stops playing: the bake covers take B only, and retarget still works
    ad.nla_tracks["single_face"].mute = True
    s.target = rig
    assert bpy.ops.aurt.bake_keys() == {"FINISHED"}
    baked = rig.animation_data.action
    assert baked.name == f"{rig.name}_NLA_baked"
    assert tuple(baked.frame_range) == (20.0, 24.0) and len(ad.drivers) == 0
    assert bpy.ops.aurt.retarget() == {"FINISHED"}
    (jaw,) = _param_curves(bpy, head.data.shape_keys).values()
    assert [kp.co[0] for kp in jaw.keyframe_points] == [float(f) for f in range(20, 25)]
    assert jaw.evaluate(22) == pytest.approx(min(max(b26[22], 0), 1), abs=1e-5)


def read_fcurve(action, name: str):
    return _module("keys").read_fcurves(action).find(f'["{name}"]', index=0)


def test_retarget_to_bones_with_a_mapping_file(addon, tmp_path):
    bpy = addon
    bpy.context.scene.render.fps = 30
    rig = _setup_take(bpy, end=3)
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    bpy.ops.object.armature_add()
    other = bpy.context.active_object
    other.pose.bones["Bone"].rotation_mode = "XYZ"
    mapping = tmp_path / "other.toml"
    mapping.write_text(
        'format = "aurt-mapping-1"\nname = "other"\nkind = "bones"\n\n'
        '[[target]]\nname = "Bone"\nchannel = "rotation_euler"\nindex = 2\n'
        "source = { head_yaw = 1.0 }\n"
    )
    s = bpy.context.scene.aurt
    s.target, s.retarget_target, s.mapping_path = rig, other, str(mapping)
    assert bpy.ops.aurt.retarget() == {"FINISHED"}
    fc = _param_curves(bpy, other)['pose.bones["Bone"].rotation_euler']
    yaw = _param_curves(bpy, rig)['["head_yaw"]']
    for kp in fc.keyframe_points:
        assert kp.co[1] == pytest.approx(np.radians(yaw.evaluate(kp.co[0])), abs=1e-5)
    # a mapping naming a bone in quaternion mode is refused, naming the bone
    other.pose.bones["Bone"].rotation_mode = "QUATERNION"
    with pytest.raises(RuntimeError, match="Bone"):
        bpy.ops.aurt.retarget()


def test_demo_job_tracks_saves_blend_and_renders_side_by_side(tiny_bundle, tmp_path):
    import subprocess

    import cv2

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "au_retarget_addon.demo", "--model", str(tiny_bundle)]
    cmd += ["--video", str(VIDEO), "--frames", "5", "--size", "64", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "demo.blend").stat().st_size > 100_000
    cap = cv2.VideoCapture(str(out / "demo_preview.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (
        128,
        64,
    )
    ok, frame = cap.read()
    assert ok and frame[:, 64:].std() > 5  # the rig half is a render, not a blank
    assert cv2.imread(str(out / "demo_sheet.png")).shape[1] == 2 * 128


@pytest.mark.parametrize(
    "case",
    [
        "bake_without_take",
        "push_without_take",
        "retarget_without_character",
        "retarget_bad_mapping",
    ],
)
def test_bake_and_retarget_errors_leave_the_scene(addon, tmp_path, case):
    bpy = addon
    rig = _setup_take(bpy, end=3)
    s = bpy.context.scene.aurt
    if case not in ("bake_without_take", "push_without_take"):
        assert bpy.ops.aurt.track_video() == {"FINISHED"}
    if case == "retarget_bad_mapping":
        bpy.ops.mesh.primitive_plane_add()
        s.retarget_target = bpy.context.active_object
        s.retarget_target.shape_key_add(name="Basis")
        bad = tmp_path / "bad.toml"
        bad.write_text('format = "aurt-mapping-1"\nkind = "shape_keys"\n')
        s.mapping_path = str(bad)
    s.target = rig
    state = _scene_state(bpy)
    drivers = len(rig.animation_data.drivers) if rig.animation_data else 0
    op, expect = {
        "bake_without_take": (bpy.ops.aurt.bake_keys, "no take to bake"),
        "push_without_take": (bpy.ops.aurt.push_take_to_nla, "no active take to push"),
        "retarget_without_character": (bpy.ops.aurt.retarget, "no character"),
        "retarget_bad_mapping": (bpy.ops.aurt.retarget, "bad.toml"),
    }[case]
    with pytest.raises(RuntimeError, match=expect):
        op()
    assert _scene_state(bpy) == state
    assert (len(rig.animation_data.drivers) if rig.animation_data else 0) == drivers
