"""Build the face rig in Blender from `rigs.geometry` and the spec (runs inside Blender).

One custom property per parameter lives on the armature object; drivers with
simple (Python-free) expressions turn them into bone location, rotation and
scale. No shape keys: the mesh follows the bones through an Armature modifier.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, cast

import bpy
import numpy as np

from .geometry import MATERIALS, FaceMesh, build_face_mesh
from .spec import AXES, CHANNELS, Effect, Param, RigSpec, load_spec

RIG_NAME = "AURT_Rig"
MESH_NAME = "AURT_Face"
LABEL_ATTRIBUTE = "aurt_label"
BONE_LENGTH = 0.06


class RigBuildError(RuntimeError):
    """Building the face rig failed; the message names the bone or parameter."""


def _materials(prefix: str) -> list[bpy.types.Material]:
    out = []
    for name, (rgb, rough) in MATERIALS.items():
        mat = bpy.data.materials.new(f"{prefix}_{name}")  # node-based by default
        bsdf = mat.node_tree.nodes.get("Principled BSDF")
        bsdf.inputs["Base Color"].default_value = (*rgb, 1.0)
        bsdf.inputs["Roughness"].default_value = rough
        mat.diffuse_color = (*rgb, 1.0)
        out.append(mat)
    return out


def _mesh(fm: FaceMesh, name: str) -> bpy.types.Mesh:
    me = bpy.data.meshes.new(name)
    me.from_pydata(fm.verts.tolist(), [], [list(f) for f in fm.faces])
    me.validate(clean_customdata=False)
    for mat in _materials(name):
        me.materials.append(mat)
    me.polygons.foreach_set("material_index", fm.face_material.astype(np.int32))
    me.polygons.foreach_set("use_smooth", np.ones(len(fm.faces), dtype=bool))
    attr = cast(bpy.types.IntAttribute, me.attributes.new(LABEL_ATTRIBUTE, "INT", "FACE"))
    attr.data.foreach_set("value", fm.face_label.astype(np.int32))
    me.update()
    return me


def _vertex_groups(obj: bpy.types.Object, fm: FaceMesh) -> None:
    """One group per deform bone (weights batched by value) and one per landmark."""
    for j, bone in enumerate(fm.bones):
        vg = obj.vertex_groups.new(name=bone)
        col = np.round(fm.weights[:, j], 4)
        for w in np.unique(col[col > 1e-3]):
            vg.add(np.flatnonzero(col == w).tolist(), float(w), "REPLACE")
    for k, v in enumerate(fm.lm68):
        obj.vertex_groups.new(name=f"lm68_{k:02d}").add([v], 1.0, "REPLACE")
    for k, pair in enumerate(fm.lm5):  # the point is the mean of these vertices
        vg = obj.vertex_groups.new(name=f"lm5_{k}")
        vg.add(sorted(set(pair)), 1.0 / len(set(pair)), "REPLACE")


def _armature(
    spec: RigSpec, fm: FaceMesh, name: str, coll: bpy.types.Collection
) -> bpy.types.Object:
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    coll.objects.link(obj)
    view_layer = bpy.context.view_layer
    prev_active = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        for b in spec.bones:
            eb = arm.edit_bones.new(b.name)
            eb.head = fm.bone_heads[b.name].tolist()
            eb.tail = (fm.bone_heads[b.name] + np.array([0.0, 0.0, BONE_LENGTH])).tolist()
            eb.roll = 0.0
            eb.use_deform = b.deform
            if b.parent:
                eb.parent = arm.edit_bones[b.parent]
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = prev_active
    for pb in obj.pose.bones:
        pb.rotation_mode = "ZXY"  # roll, then pitch, then yaw
    return obj


def _ui(obj: bpy.types.Object, name: str) -> Any:
    """UI data (range, default, description) of a custom property."""
    return obj.id_properties_ui(name)


def _add_properties(obj: bpy.types.Object, spec: RigSpec) -> None:
    for p in spec.params:
        if p.discrete:
            obj[p.name] = int(p.default)
            _ui(obj, p.name).update(
                min=int(p.min), max=int(p.max), default=int(p.default), description=p.doc
            )
        else:
            obj[p.name] = float(p.default)
            _ui(obj, p.name).update(
                min=p.min,
                max=p.max,
                soft_min=p.min,
                soft_max=p.max,
                default=p.default,
                description=p.doc or p.group,
            )
    obj["aurt_spec_hash"] = spec.hash()


def _term(p: Param, e: Effect) -> str:
    gain = math.radians(e.gain) if e.channel == "rot" else e.gain
    if e.style is not None:  # 1 at this style's index, 0 at every other integer
        return f"{gain!r}*max(0.0,1.0-abs({p.name}-{e.style}))"
    return f"{gain!r}*({p.name}-{p.default!r})"


def _add_drivers(obj: bpy.types.Object, spec: RigSpec) -> None:
    channels: dict[tuple[str, str, str], list[tuple[Param, Effect]]] = defaultdict(list)
    for p in spec.params:
        for e in p.effects:
            channels[(e.bone, e.channel, e.axis)].append((p, e))
    for (bone, ch, ax), items in sorted(channels.items()):
        pb = obj.pose.bones.get(bone)
        if pb is None:
            raise RigBuildError(f"bone {bone!r} named by parameter {items[0][0].name!r} is missing")
        drv = pb.driver_add(CHANNELS[ch], AXES[ax]).driver
        drv.type = "SCRIPTED"
        for name in sorted({p.name for p, _ in items}):
            var = drv.variables.new()
            var.name = name
            var.type = "SINGLE_PROP"
            var.targets[0].id_type = "OBJECT"
            var.targets[0].id = obj
            var.targets[0].data_path = f'["{name}"]'
        base = "1.0" if ch == "scale" else "0.0"
        drv.expression = base + "".join(f"+{_term(p, e)}" for p, e in items)


def build_face_rig(
    context: bpy.types.Context | None = None, spec: RigSpec | None = None, name: str = RIG_NAME
) -> bpy.types.Object:
    """Create the face rig (armature + mesh) in the context's scene; returns the armature."""
    context = context or bpy.context
    spec = spec or load_spec()
    fm = build_face_mesh(spec)
    coll = bpy.data.collections.new(name)
    context.scene.collection.children.link(coll)
    rig = _armature(spec, fm, name, coll)
    _add_properties(rig, spec)
    _add_drivers(rig, spec)
    mesh_obj = bpy.data.objects.new(
        MESH_NAME if name == RIG_NAME else f"{name}_Face", _mesh(fm, MESH_NAME)
    )
    coll.objects.link(mesh_obj)
    _vertex_groups(mesh_obj, fm)
    mesh_obj.parent = rig
    mod = cast(bpy.types.ArmatureModifier, mesh_obj.modifiers.new("Armature", "ARMATURE"))
    mod.object = rig
    rig["aurt_mesh"] = mesh_obj.name
    context.view_layer.update()
    return rig


def face_mesh_object(rig: bpy.types.Object) -> bpy.types.Object:
    """The mesh deformed by a rig made by `build_face_rig`."""
    name = rig.get("aurt_mesh")
    obj = bpy.data.objects.get(name) if name else None
    if obj is None:
        raise RigBuildError(f"rig {rig.name!r} has no face mesh (property 'aurt_mesh')")
    return obj


def set_params(
    rig: bpy.types.Object, values: dict[str, float] | np.ndarray, spec: RigSpec | None = None
) -> None:
    """Set parameters by name (dict) or as a full vector in spec order."""
    spec = spec or load_spec()
    if isinstance(values, np.ndarray):
        if values.shape != (spec.size,):
            raise RigBuildError(
                f"parameter vector has shape {values.shape}, spec needs ({spec.size},)"
            )
        values = dict(zip(spec.names, values.tolist(), strict=True))
    for k, v in values.items():
        p = spec.param(k)
        rig[k] = int(round(v)) if p.discrete else float(v)
    rig.update_tag()


def evaluated_vertices(
    rig: bpy.types.Object, depsgraph: bpy.types.Depsgraph | None = None
) -> np.ndarray:
    """World positions (V, 3) of all face-mesh vertices, posed by the current parameters."""
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    obj = face_mesh_object(rig).evaluated_get(depsgraph)
    me = obj.to_mesh()
    try:
        co = np.empty(len(me.vertices) * 3)
        me.vertices.foreach_get("co", co)
    finally:
        obj.to_mesh_clear()
    mw = np.array(obj.matrix_world)
    return co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3]


def landmarks_world(
    rig: bpy.types.Object, depsgraph: bpy.types.Depsgraph | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """World positions of the 68 and 5 landmark vertices on the evaluated (posed) mesh."""
    fm = build_face_mesh()
    world = evaluated_vertices(rig, depsgraph)
    return world[fm.lm68], fm.lm5_of(world)
