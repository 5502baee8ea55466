"""Live Link Face CSV export and import: the file layout, the round trip through the ARKit
mapping, errors that name the row and column, the command line, and (real Blender) the
two operators on a tracked take."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from au_retarget_addon.core import livelink as ll
from au_retarget_addon.core.__main__ import main
from au_retarget_addon.core.mapping import load_mapping
from au_retarget_addon.core.tracks import Tracks, write_csv
from au_retarget_addon.resources import DEFAULT_BUNDLE
from tests.test_addon import (  # noqa: F401  (fixtures)
    _param_curves,
    _scene_state,
    _setup_take,
    addon,
    addon_zip,
)

CARD = json.loads((DEFAULT_BUNDLE / "model_card.json").read_text())
NAMES = ll.keyed_names(CARD)
RANGES = CARD["ranges"]
POSE_GAZE = ["head_yaw", "head_pitch", "head_roll", "gaze_yaw", "gaze_pitch"]


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(ll.DEFAULT_MAPPING)


def _random_values(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([[rng.uniform(*RANGES[name]) for name in NAMES] for _ in range(n)])


def _rows(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_header_and_rows_are_the_live_link_face_layout(tmp_path, mapping):
    take = ll.from_parameters(NAMES, _random_values(4), np.arange(4) / 30, mapping)
    ll.write_livelink(tmp_path / "take.csv", take)
    header, *rows = _rows(tmp_path / "take.csv")
    assert header[:5] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft",
                          "EyeLookInLeft"]  # fmt: skip
    assert header[16:20] == ["JawForward", "JawRight", "JawLeft", "JawOpen"]  # the app's order
    assert header[23:25] == ["MouthRight", "MouthLeft"]
    assert header[53] == "TongueOut"
    assert header[54:] == ["HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch",
                           "LeftEyeRoll", "RightEyeYaw", "RightEyePitch",
                           "RightEyeRoll"]  # fmt: skip
    assert len(header) == 63 and len(set(header)) == 63  # timecode, count, 61 values
    assert len(rows) == 4 and all(len(r) == 63 and r[1] == "61" for r in rows)
    # 60 timecode frames per second: video frames at 30 fps are every other one
    assert [r[0] for r in rows] == ["00:00:00:00.000", "00:00:00:02.000", "00:00:00:04.000",
                                    "00:00:00:06.000"]  # fmt: skip
    weights = np.array([r[2:54] for r in rows], float)
    assert weights.min() >= 0.0 and weights.max() <= 1.0


def test_timecode_is_frames_and_thousandths_at_the_rate():
    assert ll.format_timecode(3723.5) == "01:02:03:30.000"
    assert ll.format_timecode(1 / 7, rate=30) == "00:00:00:04.286"
    assert ll.parse_timecode("07:44:57:02.944") == pytest.approx(27897 + 2.944 / 60)
    assert ll.parse_timecode("00:00:01:15", rate=30) == pytest.approx(1.5)
    for t in (0.0, 0.25, 59.999, 3600.123):
        assert ll.parse_timecode(ll.format_timecode(t)) == pytest.approx(t, abs=1e-5)
    with pytest.raises(ValueError, match="not below the timecode rate 30"):
        ll.parse_timecode("00:00:00:45.000", rate=30)


def test_export_then_import_gives_back_pose_gaze_and_the_arkit_weights(tmp_path, mapping):
    values = _random_values(40)
    values[7] = np.nan  # a frame without a face is left out
    times = 2.0 + np.arange(40) / 30
    take = ll.from_parameters(NAMES, values, times, mapping)
    ll.write_livelink(tmp_path / "take.csv", take)
    back = ll.read_livelink(tmp_path / "take.csv")
    assert len(back.times) == 39 and back.found.all()
    np.testing.assert_allclose(back.times, np.delete(times, 7) - 2.0, atol=1e-9)

    tracks = ll.to_tracks(back, mapping, CARD)
    assert tracks.names == NAMES and tracks.fps == pytest.approx(30.0)
    kept = np.delete(values, 7, axis=0)
    col = [NAMES.index(n) for n in POSE_GAZE]
    np.testing.assert_allclose(tracks.values[:, col], kept[:, col], atol=1e-4)
    again = ll.from_parameters(tracks.names, tracks.values, tracks.times, mapping)
    np.testing.assert_allclose(again.weights, back.weights, atol=1e-6)
    np.testing.assert_allclose(again.angles, back.angles, atol=1e-9)
    # AUs one blendshape reads alone come back exactly; the rest stay in their ranges
    for name in ("AU12_L", "AU26", "AU43_R", "AD30", "AU28", "AU17"):
        np.testing.assert_allclose(tracks.values[:, NAMES.index(name)], kept[:, NAMES.index(name)],
                                   atol=1e-6, err_msg=name)  # fmt: skip
    lo, hi = np.array([RANGES[n] for n in NAMES]).T
    assert (tracks.values >= lo - 1e-9).all() and (tracks.values <= hi + 1e-9).all()


def test_head_and_eye_signs(mapping):
    values = np.zeros((1, len(NAMES)))
    for name, v in zip(POSE_GAZE, (20.0, 10.0, -5.0, 15.0, -8.0), strict=True):
        values[0, NAMES.index(name)] = v
    angles = dict(zip(ll.ANGLES, ll.from_parameters(NAMES, values, [0.0], mapping).angles[0],
                      strict=True))  # fmt: skip
    # ours: yaw + toward the face's own left, roll + top of the head toward its own right;
    # Live Link Face: yaw + toward the face's own right, roll + toward its own left
    assert angles["HeadYaw"] == pytest.approx(np.radians(-20.0))
    assert angles["HeadPitch"] == pytest.approx(np.radians(10.0))
    assert angles["HeadRoll"] == pytest.approx(np.radians(5.0))
    assert angles["LeftEyeYaw"] == angles["RightEyeYaw"] == pytest.approx(np.radians(-15.0))
    assert angles["LeftEyePitch"] == angles["RightEyePitch"] == pytest.approx(np.radians(-8.0))
    assert angles["LeftEyeRoll"] == angles["RightEyeRoll"] == 0.0


def _capture(tmp_path, rows: list[dict[str, float]], header=ll.HEADER, name="capture.csv"):
    """An iPhone-like file: `rows` give some columns, the rest are 0."""
    lines = [",".join(header)]
    for i, given in enumerate(rows):
        cells = [ll.format_timecode(10 * 3600 + i / 60), "61"]
        cells += [f"{given.get(h.lower(), 0.0):.6f}" for h in header[2:]]
        lines.append(",".join(cells))
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_iphone_capture_imports_to_aus_that_reproduce_it(tmp_path, mapping):
    path = _capture(
        tmp_path,
        [
            {"jawleft": 0.6, "jawopen": 0.8, "mouthsmileleft": 0.5, "cheekpuff": 0.9},
            {"jawright": 0.3, "browinnerup": 0.4, "mouthpressleft": 0.2, "mouthpressright": 0.6},
            {"headyaw": -0.2, "lefteyepitch": 0.1, "righteyepitch": 0.2, "eyeblinkright": 1.0},
        ],
    )
    tracks = ll.to_tracks(ll.read_livelink(path), mapping, CARD)
    v = {n: tracks.values[:, i] for i, n in enumerate(NAMES)}
    assert tracks.times == pytest.approx([0, 1 / 60, 2 / 60])
    assert v["AD30"][:2] == pytest.approx([0.6, -0.3])  # a clamped 0 asks only "at most 0"
    assert v["AU26"][0] == pytest.approx(0.8) and v["AU12_L"][0] == pytest.approx(0.5)
    assert v["AU12_R"][0] == 0.0 and v["AU25"].max() == 0.0  # read by no blendshape
    assert v["AU1_L"][1] == v["AU1_R"][1] == pytest.approx(0.4)  # split evenly
    assert v["AU24"][1] == pytest.approx(0.4)  # one AU for both: their mean
    assert v["head_yaw"][2] == pytest.approx(np.degrees(0.2))
    assert v["gaze_pitch"][2] == pytest.approx(np.degrees(0.15))
    assert v["AU43_R"][2] == pytest.approx(1.0)


def test_names_in_any_case_and_order_and_rows_without_a_face(tmp_path, mapping):
    header = [
        "timecode",
        "BlendshapeCount",
        *reversed([n[0].lower() + n[1:] for n in ll.HEADER[2:]]),
    ]
    path = _capture(tmp_path, [{"jawopen": 0.5}, {"jawopen": 0.7}], header=tuple(header))
    text = path.read_text().splitlines()
    text[2] = text[2].split(",", 2)[0] + ",0," + ",".join(["0"] * 61)  # the face was lost
    path.write_text("\n".join(text) + "\n")
    take = ll.read_livelink(path)
    assert take.weights[0, ll.BLENDSHAPES.index("JawOpen")] == pytest.approx(0.5)
    assert list(take.found) == [True, False]
    tracks = ll.to_tracks(take, mapping, CARD)
    assert not np.isnan(tracks.values[0]).any() and np.isnan(tracks.values[1]).all()


def _edit(path, row: int, column: int, text: str) -> None:
    lines = path.read_text().splitlines()
    cells = lines[row - 1].split(",")
    cells[column - 1] = text
    lines[row - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "row, column, text, message",
    [
        (1, 1, "frame", "row 1, column 1: expected 'Timecode', found 'frame'"),
        (1, 2, "Count", "row 1, column 2: expected 'BlendShapeCount'"),
        (1, 54, "Tongue", "row 1: missing column(s) TongueOut"),
        (1, 20, "EyeBlinkLeft", "row 1, column 20: 'EyeBlinkLeft' appears twice"),
        (3, 20, "abc", "row 3, column 20 (JawOpen): 'abc' is not a number"),
        (2, 60, "nan", "row 2, column 60 (LeftEyeRoll): 'nan' is not a finite number"),
        (4, 1, "10:00:00:00", "row 4, column 1 (Timecode): the timecode goes back in time"),
        (2, 1, "10:61:00:00.000", "row 2, column 1 (Timecode): '10:61:00:00.000': minutes"),
        (3, 1, "soon", "row 3, column 1 (Timecode): 'soon' is not a timecode"),
        (2, 2, "x", "row 2, column 2 (BlendShapeCount): 'x' is not a whole number"),
    ],
)
def test_bad_files_name_the_file_row_and_column(tmp_path, row, column, text, message):
    path = _capture(tmp_path, [{}, {}, {}])
    _edit(path, row, column, text)
    with pytest.raises(ll.LiveLinkError, match=re.escape(message)) as err:
        ll.read_livelink(path)
    assert str(path) in str(err.value)


def test_short_rows_empty_and_missing_files_are_named(tmp_path):
    path = _capture(tmp_path, [{}, {}])
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], lines[2].rsplit(",", 3)[0]]) + "\n")
    with pytest.raises(ll.LiveLinkError, match=r"row 3: 60 cells, the header has 63"):
        ll.read_livelink(path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ll.LiveLinkError, match="empty.csv is empty"):
        ll.read_livelink(tmp_path / "empty.csv")
    path.write_text(lines[0] + "\n")
    with pytest.raises(ll.LiveLinkError, match="has a header but no rows"):
        ll.read_livelink(path)
    with pytest.raises(ll.LiveLinkError, match="nothing.csv cannot be read"):
        ll.read_livelink(tmp_path / "nothing.csv")


def test_a_take_past_midnight_keeps_counting(tmp_path):
    path = _capture(tmp_path, [{}, {}])
    _edit(path, 2, 1, "23:59:59:59.000")
    _edit(path, 3, 1, "00:00:00:00.000")
    assert ll.read_livelink(path).times == pytest.approx([0.0, 1 / 60])


def _tracks(n: int = 6) -> Tracks:
    values = _random_values(n, seed=3)
    values[2] = np.nan
    return Tracks(np.arange(n), np.arange(n) / 30, list(NAMES), values, np.ones(n), 30.0)


def test_command_line_writes_a_live_link_face_csv(tmp_path, capsys):
    write_csv(_tracks(), tmp_path / "tracks.csv")
    assert main(["livelink", str(tmp_path / "tracks.csv"), "--out", str(tmp_path / "a.csv")]) == 0
    assert "5 frames with a face (of 6)" in capsys.readouterr().out
    header, *rows = _rows(tmp_path / "a.csv")
    assert header == list(ll.HEADER) and len(rows) == 5
    back = ll.to_tracks(
        ll.read_livelink(tmp_path / "a.csv"), load_mapping(ll.DEFAULT_MAPPING), CARD
    )
    kept = np.delete(_tracks().values, 2, axis=0)
    col = [NAMES.index(n) for n in POSE_GAZE]
    np.testing.assert_allclose(back.values[:, col], kept[:, col], atol=1e-4)


def test_command_line_errors_name_the_file_row_and_column(tmp_path, capsys):
    write_csv(_tracks(), tmp_path / "tracks.csv")
    (tmp_path / "bad.csv").write_text((tmp_path / "tracks.csv").read_text())
    _edit(tmp_path / "bad.csv", 4, 4, "x")
    assert main(["livelink", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "a.csv")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv row 4, column 4 (head_yaw): 'x' is not a number" in err
    assert "Traceback" not in err and not (tmp_path / "a.csv").exists()
    (tmp_path / "take.csv").write_text(",".join(ll.HEADER) + "\n")
    assert main(["livelink", str(tmp_path / "take.csv"), "--out", str(tmp_path / "a.csv")]) == 2
    assert "take.csv row 1: expected the columns frame, time, confidence" in capsys.readouterr().err
    assert main(["livelink", str(tmp_path / "tracks.csv"), "--out", str(tmp_path / "a.txt")]) == 2
    assert "a.txt: use a file name ending in .csv" in capsys.readouterr().err


# ---- real Blender: the operators on a tracked take ----


@pytest.mark.blender
def test_export_then_import_through_the_operators(addon, tmp_path):  # noqa: F811
    bpy = addon
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    for op in ("export_livelink", "import_livelink"):
        rna = getattr(bpy.ops.aurt, op).get_rna_type()
        props = [p for p in rna.properties if p.identifier != "rna_type"]
        assert {"filepath", "rate"} <= {p.identifier for p in props}, op
        assert not [p.identifier for p in props if not p.description], op
    assert bpy.types.AURT_OT_export_livelink.bl_options == {"REGISTER"}
    assert bpy.types.AURT_OT_import_livelink.bl_options == {"REGISTER", "UNDO"}
    source = _setup_take(bpy, end=5)
    assert bpy.ops.aurt.track_video() == {"FINISHED"}
    out = tmp_path / "take.csv"
    assert bpy.ops.aurt.export_livelink(filepath=str(out)) == {"FINISHED"}
    header, *rows = _rows(out)
    assert header == list(ll.HEADER) and len(rows) == 6  # one row per keyed frame
    data = np.array([r[2:] for r in rows], float)
    assert (data[:, :52] >= 0).all() and (data[:, :52] <= 1).all()
    assert (np.abs(data[:, 52:]) <= np.radians(45.0) + 1e-6).all()

    bpy.ops.aurt.add_face_rig()
    target = scene.aurt.target
    assert target != source
    assert bpy.ops.aurt.import_livelink(filepath=str(out)) == {"FINISHED"}
    action = target.animation_data.action
    assert action.name == "take" and action["aurt_take"] == str(out)
    src, dst = _param_curves(bpy, source), _param_curves(bpy, target)
    assert set(dst) == set(src)  # every parameter of a take is keyed
    for name in ("head_yaw", "head_pitch", "head_roll", "gaze_yaw", "gaze_pitch"):
        a = np.array([kp.co[:] for kp in src[f'["{name}"]'].keyframe_points])
        b = np.array([kp.co[:] for kp in dst[f'["{name}"]'].keyframe_points])
        np.testing.assert_allclose(b, a, atol=1e-4, err_msg=name)


@pytest.mark.blender
def test_a_bad_file_is_reported_and_the_scene_is_unchanged(addon, tmp_path):  # noqa: F811
    bpy = addon
    _setup_take(bpy)
    bad = _capture(tmp_path, [{}, {}])
    _edit(bad, 3, 20, "abc")
    before = _scene_state(bpy)
    with pytest.raises(RuntimeError, match=r"row 3, column 20 \(JawOpen\)"):
        bpy.ops.aurt.import_livelink(filepath=str(bad))
    with pytest.raises(RuntimeError, match="has no take"):
        bpy.ops.aurt.export_livelink(filepath=str(tmp_path / "out.csv"))
    assert _scene_state(bpy) == before and not (tmp_path / "out.csv").exists()
