"""The face rig in real Blender (bpy module): properties, bones, landmarks, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from rigs import load_spec
from rigs.geometry import build_face_mesh

pytestmark = pytest.mark.blender


def _evaluate(bpy, rig):
    bpy.context.view_layer.update()
    return rig.evaluated_get(bpy.context.evaluated_depsgraph_get())


def _basis(bpy, rig) -> dict[str, np.ndarray]:
    ev = _evaluate(bpy, rig)
    return {pb.name: np.array(pb.matrix_basis) for pb in ev.pose.bones}


def _mesh_co(bpy, rig) -> np.ndarray:
    from rigs.builder import face_mesh_object

    bpy.context.view_layer.update()
    obj = face_mesh_object(rig).evaluated_get(bpy.context.evaluated_depsgraph_get())
    me = obj.to_mesh()
    co = np.empty(len(me.vertices) * 3)
    me.vertices.foreach_get("co", co)
    obj.to_mesh_clear()
    return co.reshape(-1, 3)


def test_properties_match_spec_one_to_one(face_rig):
    spec = load_spec()
    props = [k for k in face_rig.keys() if not k.startswith("aurt_")]  # noqa: SIM118 (ID)
    assert props == spec.names
    for p in spec.params:
        ui = face_rig.id_properties_ui(p.name).as_dict()
        assert (ui["min"], ui["max"], ui["default"]) == (p.min, p.max, p.default), p.name
    assert face_rig["aurt_spec_hash"] == spec.hash()


def test_bone_driven_only(bpy_clean, face_rig):
    from rigs.builder import face_mesh_object

    mesh = face_mesh_object(face_rig).data
    assert mesh.shape_keys is None
    drivers = face_rig.animation_data.drivers
    assert len(drivers) > 0
    assert all(fc.driver.is_valid and fc.driver.is_simple_expression for fc in drivers)
    assert all(fc.data_path.startswith("pose.bones[") for fc in drivers)


@pytest.mark.parametrize("name", [p.name for p in load_spec().group("au")])
def test_each_au_moves_its_bones_and_nothing_else(bpy_clean, face_rig, name):
    from rigs.builder import set_params

    spec = load_spec()
    rest = _basis(bpy_clean, face_rig)
    set_params(face_rig, {name: 1.0})
    posed = _basis(bpy_clean, face_rig)
    moved = {b for b in rest if not np.allclose(rest[b], posed[b], atol=1e-6)}
    assert moved == {e.bone for e in spec.param(name).effects}


# (parameter, iBUG point, axis 0=x 2=z, expected sign of the move)
LANDMARK_MOVES = [
    ("AU12_L", 54, 2, +1),
    ("AU12_R", 48, 2, +1),
    ("AU12_L", 54, 0, +1),
    ("AU15_L", 54, 2, -1),
    ("AU20_R", 48, 0, -1),
    ("AU26", 8, 2, -1),
    ("AU1_L", 22, 2, +1),
    ("AU2_R", 17, 2, +1),
    ("AU4_L", 22, 2, -1),
    ("AU4_L", 22, 0, -1),
    ("AU5_L", 44, 2, +1),
    ("AU43_L", 44, 2, -1),
    ("AU43_R", 37, 2, -1),
    ("AU7_L", 46, 2, +1),
    ("AU10", 51, 2, +1),
    ("AU16", 57, 2, -1),
    ("AU17", 8, 2, +1),
    ("AU25", 66, 2, -1),
    ("AU9", 33, 2, +1),
    ("AU18", 54, 0, -1),
    ("head_yaw", 30, 0, +1),
    ("head_pitch", 30, 2, +1),
    ("AD30", 8, 0, +1),
]


@pytest.mark.parametrize("name,point,axis,sign", LANDMARK_MOVES)
def test_landmarks_move_as_facs_says(bpy_clean, face_rig, name, point, axis, sign):
    from rigs.builder import landmarks_world, set_params

    rest, _ = landmarks_world(face_rig)
    set_params(face_rig, {name: 1.0 if name.startswith("A") else 15.0})
    bpy_clean.context.view_layer.update()
    moved, _ = landmarks_world(face_rig)
    delta = moved[point, axis] - rest[point, axis]
    assert sign * delta > 0.005, f"{name}: point {point} moved {delta:+.4f} on axis {axis}"


def test_au43_closes_the_eyes(bpy_clean, face_rig):
    from rigs.builder import landmarks_world, set_params

    def opening(lm):
        return [np.linalg.norm(lm[a] - lm[b]) for a, b in ((37, 41), (38, 40), (43, 47), (44, 46))]

    rest, _ = landmarks_world(face_rig)
    set_params(face_rig, {"AU43_L": 1.0, "AU43_R": 1.0})
    closed, _ = landmarks_world(face_rig)
    assert max(opening(closed)) < 0.25 * min(opening(rest))


def test_identity_half_everywhere_is_the_base_face(bpy_clean, face_rig):
    from rigs.builder import set_params

    spec = load_spec()
    base = _mesh_co(bpy_clean, face_rig)
    np.testing.assert_allclose(base, build_face_mesh().verts, atol=1e-5)
    rng = np.random.default_rng(0)
    set_params(face_rig, {p.name: float(rng.uniform()) for p in spec.group("identity")})
    assert np.abs(_mesh_co(bpy_clean, face_rig) - base).max() > 0.05
    set_params(face_rig, {p.name: 0.5 for p in spec.group("identity")})
    np.testing.assert_allclose(_mesh_co(bpy_clean, face_rig), base, atol=1e-5)


def test_every_identity_parameter_changes_the_shape(bpy_clean, face_rig):
    from rigs.builder import set_params

    spec = load_spec()
    weak, wild = [], []
    for p in [*spec.group("identity"), spec.param("brow_style")]:
        set_params(face_rig, {p.name: p.min})
        lo = _mesh_co(bpy_clean, face_rig)
        set_params(face_rig, {p.name: p.max})
        hi = _mesh_co(bpy_clean, face_rig)
        set_params(face_rig, {p.name: p.default})
        shift = np.linalg.norm(hi - lo, axis=1).max()
        if shift < 0.015:
            weak.append((p.name, round(float(shift), 4)))
        if shift > 0.35:
            wild.append((p.name, round(float(shift), 4)))
    assert not weak, f"identity parameters with no visible effect: {weak}"
    assert not wild, f"identity parameters that tear the face: {wild}"


def test_building_is_deterministic(bpy_clean):
    from rigs.builder import build_face_rig, face_mesh_object

    def snapshot():
        rig = build_face_rig(name="AURT_Rig")
        me = face_mesh_object(rig).data
        co = np.empty(len(me.vertices) * 3)
        me.vertices.foreach_get("co", co)
        loops = np.empty(len(me.loops), dtype=np.int32)
        me.loops.foreach_get("vertex_index", loops)
        return co, loops

    co1, loops1 = snapshot()
    bpy_clean.ops.wm.read_factory_settings(use_empty=True)
    co2, loops2 = snapshot()
    assert np.array_equal(co1, co2) and np.array_equal(loops1, loops2)


def test_segmentation_labels_cover_the_face(face_rig):
    from rigs.builder import LABEL_ATTRIBUTE, face_mesh_object

    spec = load_spec()
    attr = face_mesh_object(face_rig).data.attributes[LABEL_ATTRIBUTE]
    vals = np.empty(len(attr.data), dtype=np.int32)
    attr.data.foreach_get("value", vals)
    assert set(np.unique(vals)) == set(range(1, len(spec.labels)))  # all but background


def test_landmark_vertex_groups_name_their_vertices(face_rig):
    from rigs.builder import face_mesh_object

    obj = face_mesh_object(face_rig)
    fm = build_face_mesh()
    groups = {f"lm68_{k:02d}": [v] for k, v in enumerate(fm.lm68)}
    groups.update({f"lm5_{k}": sorted(set(pair)) for k, pair in enumerate(fm.lm5)})
    for name, expected in groups.items():
        group = obj.vertex_groups[name].index
        members = [v.index for v in obj.data.vertices if any(g.group == group for g in v.groups)]
        assert members == expected, name
