"""The rig spec, without Blender: layout, ranges, FACS grouping, hash."""

import numpy as np
import pytest

from rigs import face_spec, load_spec
from rigs.spec import RigSpecError, _check


def test_v1_parameter_set():
    spec = load_spec()
    groups = {g: [p.name for p in spec.group(g)] for g in ("pose", "gaze", "au", "identity")}
    assert groups["pose"] == ["head_yaw", "head_pitch", "head_roll"]
    assert groups["gaze"] == ["gaze_yaw", "gaze_pitch"]
    split = ["AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU12", "AU14", "AU15", "AU20", "AU43"]
    single = ["AU9", "AU10", "AU16", "AU17", "AU18", "AU22", "AU23", "AU24", "AU25", "AU26", "AU28"]
    expected = [f"{a}_{s}" for a in split for s in "LR"] + single + ["AD30"]
    assert groups["au"] == expected
    assert len(groups["identity"]) >= 60
    assert spec.param("brow_style").discrete and spec.param("brow_style").max >= 3


def test_ranges_and_defaults():
    spec = load_spec()
    for p in spec.group("identity"):
        assert (p.min, p.max, p.default) == (0.0, 1.0, 0.5), p.name
    for p in spec.group("au"):
        assert p.default == 0.0 and p.max == 1.0, p.name
    assert spec.param("AD30").min == -1.0
    assert np.all(spec.mins() <= spec.defaults()) and np.all(spec.defaults() <= spec.maxs())


def test_layout_is_contiguous_and_covers_vector():
    spec = load_spec()
    layout = spec.layout()
    stops = [sl.start for sl in layout.values()] + [spec.size]
    assert stops == sorted(stops) and stops[0] == 0
    for g, sl in layout.items():
        assert all(p.group == g for p in spec.params[sl])


def test_facs_intensity_averages_left_right_times_five():
    spec = load_spec()
    v = spec.defaults()[None].repeat(1, 0)
    v[0, spec.param("AU12_L").index] = 1.0
    v[0, spec.param("AU12_R").index] = 0.6
    v[0, spec.param("AU26").index] = 0.5
    names, inten = spec.facs_intensity(v)
    assert "AD30" not in names and len(names) == 22
    assert inten[0, names.index("AU12")] == pytest.approx(4.0)
    assert inten[0, names.index("AU26")] == pytest.approx(2.5)


def test_hash_is_stable_and_content_sensitive():
    spec = load_spec()
    assert spec.hash() == load_spec().hash() and len(spec.hash()) == 64
    d = spec.to_dict()
    d["params"][0]["max"] = 44.0
    import hashlib
    import json

    changed = hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode())
    assert changed.hexdigest() != spec.hash()


def test_unknown_bone_is_named():
    spec = load_spec()
    from dataclasses import replace

    from rigs.spec import Effect

    bad = replace(spec.params[0], effects=(Effect("no_such_bone", "loc", "x", 1.0),))
    broken = replace(spec, params=(bad, *spec.params[1:]))
    with pytest.raises(RigSpecError, match="no_such_bone"):
        _check(broken)


def test_every_effect_bone_exists_in_bone_list():
    names = {b[0] for b in face_spec.BONES}
    for p in load_spec().params:
        for e in p.effects:
            assert e.bone in names, (p.name, e.bone)


def test_mirror_swaps_sides_and_negates_sideways_parameters():
    spec = load_spec()
    source, sign = spec.mirror()
    names = spec.names

    def mirror_of(name: str) -> tuple[str, float]:
        i = names.index(name)
        return names[source[i]], float(sign[i])

    assert mirror_of("AU12_L") == ("AU12_R", 1.0) and mirror_of("AU12_R") == ("AU12_L", 1.0)
    for name in ("head_yaw", "head_roll", "gaze_yaw", "AD30"):
        assert mirror_of(name) == (name, -1.0)
    for name in ("head_pitch", "gaze_pitch", "AU26", "id_face_width", "brow_style"):
        assert mirror_of(name) == (name, 1.0)
    # mirroring twice is the identity
    np.testing.assert_array_equal(source[source], np.arange(spec.size))
    np.testing.assert_array_equal(sign[source] * sign, np.ones(spec.size))


def test_a_parameter_the_rig_cannot_mirror_is_named():
    from dataclasses import replace

    from rigs.spec import Effect

    spec = load_spec()
    i = spec.names.index("AU12_L")
    lopsided = replace(
        spec.params[i], effects=(*spec.params[i].effects, Effect("nose", "loc", "x", 0.1))
    )
    broken = replace(spec, params=(*spec.params[:i], lopsided, *spec.params[i + 1 :]))
    with pytest.raises(RigSpecError, match="AU12_L"):
        broken.mirror()
