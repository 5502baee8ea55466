"""Retarget mapping files and the video-time to scene-frame rule (bpy-free core)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from au_retarget_addon.core.mapping import MappingError, load_mapping
from au_retarget_addon.core.tracks import Tracks, scene_keys
from au_retarget_addon.resources import ARKIT_MAPPING
from rigs import load_spec


def test_arkit_mapping_names_the_52_blendshapes_from_spec_parameters():
    m = load_mapping(ARKIT_MAPPING)
    assert m.kind == "shape_keys" and len({t.name for t in m.targets}) == 52
    names = set(load_spec().names)
    assert {p for t in m.targets for p in t.source} <= names


def test_arkit_mapping_arithmetic_and_clamping():
    m = load_mapping(ARKIT_MAPPING)
    names = ["gaze_yaw", "AU26", "AU1_L", "AU1_R", "AD30"]
    names += sorted({p for t in m.targets for p in t.source} - set(names))
    v = np.zeros((2, len(names)))
    v[0, :5] = [15.0, 0.7, 0.2, 0.6, -0.5]  # look 15 degrees toward the face's own left
    v[1, :] = np.nan  # no face: stays NaN
    out = dict(zip([t.name for t in m.targets], m.evaluate(names, v).T, strict=True))
    assert out["eyeLookOutLeft"][0] == pytest.approx(0.5)
    assert out["eyeLookInRight"][0] == pytest.approx(0.5)
    assert out["eyeLookInLeft"][0] == 0.0 and out["eyeLookOutRight"][0] == 0.0  # clamped
    assert out["jawOpen"][0] == pytest.approx(0.7)
    assert out["browInnerUp"][0] == pytest.approx(0.4)
    assert out["jawRight"][0] == pytest.approx(0.5) and out["jawLeft"][0] == 0.0
    assert out["tongueOut"][0] == 0.0
    assert np.isnan(out["jawOpen"][1])


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('format = "x"\nkind = "bones"\n[[target]]\nname = "a"\n', "'format'"),
        ('format = "aurt-mapping-1"\nkind = "curves"\n[[target]]\nname = "a"\n', "'kind'"),
        ('format = "aurt-mapping-1"\nkind = "bones"\n', "no [[target]]"),
        (
            'format = "aurt-mapping-1"\nkind = "bones"\n[[target]]\nname = "jaw"\n'
            'channel = "rotation"\nsource = { AU26 = 1.0 }\n',
            "jaw",
        ),
        (
            'format = "aurt-mapping-1"\nkind = "shape_keys"\n[[target]]\nname = "a"\n'
            'source = { AU26 = "much" }\n',
            "source",
        ),
        ("format = [", "mapping file"),
    ],
)
def test_bad_mapping_files_are_refused_naming_file_and_entry(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(MappingError, match=re.escape(fragment)) as info:
        load_mapping(path)
    assert "bad.toml" in str(info.value)


def test_mapping_reading_an_unknown_parameter_names_it(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(
        'format = "aurt-mapping-1"\nkind = "shape_keys"\n[[target]]\nname = "a"\n'
        "source = { AU99 = 1.0 }\n"
    )
    with pytest.raises(MappingError, match="AU99"):
        load_mapping(path).evaluate(["AU12_L"], np.zeros((1, 1)))


def _tracks(n: int, fps: float, missing: tuple[int, ...] = ()) -> Tracks:
    values = np.arange(n, dtype=float)[:, None]
    values[list(missing)] = np.nan
    return Tracks(np.arange(n), np.arange(n) / fps, ["x"], values, np.ones(n), fps)


def test_scene_frames_follow_video_time():
    same = scene_keys(_tracks(5, 30.0), 30.0)
    assert same[0].tolist() == [0, 1, 2, 3, 4] and same[1].tolist() == [0, 1, 2, 3, 4]
    faster = scene_keys(_tracks(4, 24.0), 48.0)  # scene twice as fast: every other frame
    assert faster[0].tolist() == [0, 2, 4, 6]
    slower = scene_keys(_tracks(6, 30.0), 25.0)  # 30 -> 25 fps: frames meet, nearest wins
    assert slower[0].tolist() == [0, 1, 2, 3, 4]
    assert slower[1].tolist() == [0, 1, 2, 4, 5]  # rows 2 and 3 meet on 2; row 2 is nearer
    gaps = scene_keys(_tracks(5, 30.0, missing=(1, 2)), 30.0)  # no face: no key
    assert gaps[0].tolist() == [0, 3, 4]
