"""The v1 face rig as plain data: bones, parameters and what each parameter moves.

This file is the single source of truth for parameter names, order, ranges,
defaults and bone effects. Everything else (renderer, networks, losses, model
card, keyframe writer) reads it through `rigs.spec.load_spec()`.

Bone channel axes are in each bone's local frame. Every bone points up, so
local x = the character's left (+X world), y = up (+Z world), z = forward,
out of the face (-Y world). Left-side effects are written once and mirrored to
the right side (x translation, y and z rotation change sign).

An effect (bone, channel, axis, gain) adds `gain * (value - default)` to the
channel: `loc` in face units (the head is about 2 units tall), `rot` in degrees,
`scale` as a fraction added to 1.
"""

from __future__ import annotations

from typing import Any

Effect = tuple[str, str, str, float]

# Version of the rig's geometry (rigs/surface.py and friends). Part of the spec hash, so
# data and models made from an older face are refused. 2: eyes closer, mouth lower.
# 3: renders are aligned at the detector's 5 points (rigs.geometry.DETECTOR_OFFSETS).
# 4: AU translations AU_LOC_GAIN times larger.
RIG_VERSION = 4

# Every AU translation gain below is multiplied by this. The gains were first set by eye
# and moved the landmarks far less than real faces do: at intensity 5, AU12 moved a mouth
# corner 0.06 inter-ocular distances (ml/blender/landmark_displacement.py; 0.19 with this gain),
# where the sample video's smile moves it 0.31 (MediaPipe face mesh). Rotations and scales
# are not multiplied: AU43 already closes the lids and AU26 opens the jaw 14 degrees.
AU_LOC_GAIN = 3.0

# (name, parent, deforms): parents come before children.
BONES: list[tuple[str, str | None, bool]] = [
    ("neck", None, True),
    ("head", "neck", True),
    ("cranium", "head", True),
    ("forehead", "head", True),
    ("nose", "head", True),
    ("nose_tip", "nose", True),
    ("nostril.L", "nose", True),
    ("nostril.R", "nose", True),
    ("mouth", "head", False),
    ("lip_up", "mouth", True),
    ("lip_up.L", "mouth", True),
    ("lip_up.R", "mouth", True),
    ("corner.L", "mouth", True),
    ("corner.R", "mouth", True),
    ("jaw", "head", True),
    ("lip_lo", "jaw", True),
    ("lip_lo.L", "jaw", True),
    ("lip_lo.R", "jaw", True),
    ("chin", "jaw", True),
    ("jaw_angle.L", "jaw", True),
    ("jaw_angle.R", "jaw", True),
]
for _s in ("L", "R"):
    BONES += [
        (f"brow.{_s}", "head", False),
        (f"brow_in.{_s}", f"brow.{_s}", True),
        (f"brow_mid.{_s}", f"brow.{_s}", True),
        (f"brow_out.{_s}", f"brow.{_s}", True),
        (f"eye_socket.{_s}", "head", True),
        (f"eye.{_s}", f"eye_socket.{_s}", True),
        (f"lid_up.{_s}", f"eye_socket.{_s}", True),
        (f"lid_lo.{_s}", f"eye_socket.{_s}", True),
        (f"cheek.{_s}", "head", True),
        (f"cheekbone.{_s}", "head", True),
    ]

# Upper lid rotation about local x: positive closes (the lid's front edge moves down).
LID_UP_CLOSE = 1.0
LID_LO_RAISE = -1.0

POSE: list[dict[str, Any]] = [
    {
        "name": "head_yaw",
        "min": -45.0,
        "max": 45.0,
        "effects": [("head", "rot", "y", 1.0)],
        "doc": "degrees; + turns the face toward its own left (image right)",
    },
    {
        "name": "head_pitch",
        "min": -30.0,
        "max": 30.0,
        "effects": [("head", "rot", "x", -1.0)],
        "doc": "degrees; + tilts the chin up",
    },
    {
        "name": "head_roll",
        "min": -30.0,
        "max": 30.0,
        "effects": [("head", "rot", "z", 1.0)],
        "doc": "degrees; + tilts the top of the head toward image left",
    },
]

GAZE: list[dict[str, Any]] = [
    {
        "name": "gaze_yaw",
        "min": -30.0,
        "max": 30.0,
        "effects": [("eye.L", "rot", "y", 1.0), ("eye.R", "rot", "y", 1.0)],
        "doc": "degrees, both eyes; + looks toward the face's own left",
    },
    {
        "name": "gaze_pitch",
        "min": -25.0,
        "max": 25.0,
        "effects": [("eye.L", "rot", "x", -1.0), ("eye.R", "rot", "x", -1.0)],
        "doc": "degrees, both eyes; + looks up",
    },
]

# Split AUs: left-side effects, mirrored for the right side.
AU_SPLIT: list[tuple[str, str, list[Effect]]] = [
    (
        "AU1",
        "inner brow raiser",
        [("brow_in.L", "loc", "y", 0.07), ("brow_mid.L", "loc", "y", 0.025)],
    ),
    (
        "AU2",
        "outer brow raiser",
        [("brow_out.L", "loc", "y", 0.07), ("brow_mid.L", "loc", "y", 0.04)],
    ),
    (
        "AU4",
        "brow lowerer",
        [
            ("brow_in.L", "loc", "y", -0.05),
            ("brow_in.L", "loc", "x", -0.04),
            ("brow_mid.L", "loc", "y", -0.035),
            ("brow_mid.L", "loc", "x", -0.02),
            ("brow_out.L", "loc", "y", -0.01),
        ],
    ),
    ("AU5", "upper lid raiser", [("lid_up.L", "rot", "x", -18.0 * LID_UP_CLOSE)]),
    (
        "AU6",
        "cheek raiser",
        [
            ("cheek.L", "loc", "y", 0.045),
            ("cheek.L", "loc", "z", 0.015),
            ("lid_lo.L", "rot", "x", 10.0 * LID_LO_RAISE),
            ("brow_out.L", "loc", "y", -0.01),
        ],
    ),
    (
        "AU7",
        "lid tightener",
        [
            ("lid_lo.L", "rot", "x", 16.0 * LID_LO_RAISE),
            ("lid_up.L", "rot", "x", 6.0 * LID_UP_CLOSE),
        ],
    ),
    (
        "AU12",
        "lip corner puller",
        [
            ("corner.L", "loc", "y", 0.06),
            ("corner.L", "loc", "x", 0.035),
            ("corner.L", "loc", "z", -0.025),
            ("cheek.L", "loc", "y", 0.015),
        ],
    ),
    (
        "AU14",
        "dimpler",
        [
            ("corner.L", "loc", "z", -0.045),
            ("corner.L", "loc", "y", 0.008),
            ("corner.L", "loc", "x", 0.01),
        ],
    ),
    (
        "AU15",
        "lip corner depressor",
        [("corner.L", "loc", "y", -0.055), ("corner.L", "loc", "x", 0.005)],
    ),
    (
        "AU20",
        "lip stretcher",
        [
            ("corner.L", "loc", "x", 0.065),
            ("corner.L", "loc", "y", -0.012),
            ("corner.L", "loc", "z", -0.01),
            ("lip_lo.L", "loc", "x", 0.012),
        ],
    ),
    (
        "AU43",
        "eyes closed",
        [
            ("lid_up.L", "rot", "x", 46.0 * LID_UP_CLOSE),
            ("lid_lo.L", "rot", "x", 3.0 * LID_LO_RAISE),
        ],
    ),
]


def _both(bone: str, channel: str, axis: str, gain: float, mirror: bool = True) -> list[Effect]:
    """A left-side effect plus its mirror on the right."""
    right_gain = -gain if mirror and (channel, axis) in MIRRORED else gain
    return [(f"{bone}.L", channel, axis, gain), (f"{bone}.R", channel, axis, right_gain)]


MIRRORED = {("loc", "x"), ("rot", "y"), ("rot", "z")}

AU_SINGLE: list[tuple[str, str, list[Effect]]] = [
    (
        "AU9",
        "nose wrinkler",
        [
            *_both("nostril", "loc", "y", 0.035),
            ("nose_tip", "loc", "y", 0.012),
            *_both("brow_in", "loc", "y", -0.03),
            ("lip_up", "loc", "y", 0.015),
            *_both("lip_up", "loc", "y", 0.02),
        ],
    ),
    (
        "AU10",
        "upper lip raiser",
        [
            ("lip_up", "loc", "y", 0.035),
            *_both("lip_up", "loc", "y", 0.045),
            ("lip_up", "loc", "z", 0.01),
            *_both("nostril", "loc", "y", 0.01),
        ],
    ),
    (
        "AU16",
        "lower lip depressor",
        [
            ("lip_lo", "loc", "y", -0.04),
            *_both("lip_lo", "loc", "y", -0.045),
            ("lip_lo", "loc", "z", 0.01),
        ],
    ),
    (
        "AU17",
        "chin raiser",
        [
            ("chin", "loc", "y", 0.04),
            ("chin", "loc", "z", 0.015),
            ("lip_lo", "loc", "y", 0.02),
            ("lip_lo", "loc", "z", 0.015),
            *_both("lip_lo", "loc", "y", 0.015),
        ],
    ),
    (
        "AU18",
        "lip pucker",
        [
            *_both("corner", "loc", "x", -0.05),
            *_both("corner", "loc", "z", 0.03),
            ("lip_up", "loc", "z", 0.03),
            ("lip_lo", "loc", "z", 0.03),
            *_both("lip_up", "loc", "x", -0.02),
            *_both("lip_lo", "loc", "x", -0.02),
            *_both("lip_up", "loc", "z", 0.03),
            *_both("lip_lo", "loc", "z", 0.03),
        ],
    ),
    (
        "AU22",
        "lip funneler",
        [
            ("lip_up", "loc", "y", 0.02),
            ("lip_up", "loc", "z", 0.04),
            ("lip_lo", "loc", "y", -0.025),
            ("lip_lo", "loc", "z", 0.04),
            *_both("corner", "loc", "x", -0.03),
            *_both("corner", "loc", "z", 0.02),
            *_both("lip_up", "loc", "y", 0.02),
            *_both("lip_up", "loc", "z", 0.035),
            *_both("lip_lo", "loc", "y", -0.02),
            *_both("lip_lo", "loc", "z", 0.035),
        ],
    ),
    (
        "AU23",
        "lip tightener",
        [
            ("lip_up", "scale", "y", -0.35),
            ("lip_lo", "scale", "y", -0.35),
            *_both("lip_up", "scale", "y", -0.35),
            *_both("lip_lo", "scale", "y", -0.35),
            *_both("corner", "loc", "x", -0.015),
        ],
    ),
    (
        "AU24",
        "lip pressor",
        [
            ("lip_up", "loc", "y", -0.01),
            ("lip_lo", "loc", "y", 0.012),
            ("lip_up", "scale", "y", -0.3),
            ("lip_lo", "scale", "y", -0.3),
            *_both("lip_up", "loc", "z", -0.01),
            *_both("lip_lo", "loc", "z", -0.01),
        ],
    ),
    (
        "AU25",
        "lips part",
        [
            ("lip_lo", "loc", "y", -0.03),
            *_both("lip_lo", "loc", "y", -0.025),
            ("lip_up", "loc", "y", 0.01),
        ],
    ),
    ("AU26", "jaw drop", [("jaw", "rot", "x", 14.0)]),
    (
        "AU28",
        "lip suck",
        [
            ("lip_up", "loc", "z", -0.04),
            ("lip_lo", "loc", "z", -0.04),
            ("lip_up", "loc", "y", -0.01),
            ("lip_lo", "loc", "y", 0.01),
            *_both("lip_up", "loc", "z", -0.035),
            *_both("lip_lo", "loc", "z", -0.035),
            ("lip_up", "scale", "y", -0.3),
            ("lip_lo", "scale", "y", -0.3),
        ],
    ),
]


def _amplified(effects: list[Effect]) -> list[Effect]:
    return [(b, ch, ax, g * AU_LOC_GAIN if ch == "loc" else g) for b, ch, ax, g in effects]


AU_SPLIT = [(code, doc, _amplified(effects)) for code, doc, effects in AU_SPLIT]
AU_SINGLE = [(code, doc, _amplified(effects)) for code, doc, effects in AU_SINGLE]

# Action descriptor 30: jaw sideways, in [-1, 1]; + moves the jaw to the face's left.
AD30: dict[str, Any] = {
    "name": "AD30",
    "min": -1.0,
    "max": 1.0,
    "effects": [("jaw", "loc", "x", 0.05), ("jaw", "rot", "y", 4.0)],
    "doc": "jaw sideways; + toward the face's own left",
}


def _id(name: str, *effects: Effect, doc: str = "") -> dict[str, Any]:
    return {"name": f"id_{name}", "effects": list(effects), "doc": doc}


def _sym(bone: str, channel: str, axis: str, gain: float) -> tuple[Effect, ...]:
    return tuple(_both(bone, channel, axis, gain))


# Identity: 0.5 is the base face; gains are the change from 0 to 1.
IDENTITY: list[dict[str, Any]] = [
    _id("face_width", ("head", "scale", "x", 0.16)),
    _id("face_length", ("head", "scale", "y", 0.12)),
    _id("face_depth", ("head", "scale", "z", 0.12)),
    _id("cranium_height", ("cranium", "loc", "y", 0.12)),
    _id("cranium_width", ("cranium", "scale", "x", 0.16)),
    _id("forehead_height", ("forehead", "loc", "y", 0.08)),
    _id("forehead_slope", ("forehead", "loc", "z", -0.08)),
    _id("forehead_width", ("forehead", "scale", "x", 0.2)),
    _id("brow_height", *_sym("brow", "loc", "y", 0.08)),
    _id("brow_spacing", *_sym("brow", "loc", "x", 0.06)),
    _id("brow_tilt", *_sym("brow", "rot", "z", 14.0)),
    _id("brow_depth", *_sym("brow", "loc", "z", 0.05)),
    _id("brow_length", *_sym("brow", "scale", "x", 0.35)),
    _id(
        "brow_thickness",
        *_sym("brow_in", "scale", "y", 0.7),
        *_sym("brow_mid", "scale", "y", 0.7),
        *_sym("brow_out", "scale", "y", 0.7),
    ),
    _id("brow_arch", *_sym("brow_mid", "loc", "y", 0.04)),
    _id("brow_inner_height", *_sym("brow_in", "loc", "y", 0.04)),
    _id("eye_spacing", *_sym("eye_socket", "loc", "x", 0.06)),
    _id("eye_height", *_sym("eye_socket", "loc", "y", 0.06)),
    _id(
        "eye_size",
        *_sym("eye_socket", "scale", "x", 0.22),
        *_sym("eye_socket", "scale", "y", 0.22),
        *_sym("eye_socket", "scale", "z", 0.22),
    ),
    _id("eye_width", *_sym("eye_socket", "scale", "x", 0.22)),
    _id("eye_depth", *_sym("eye_socket", "loc", "z", -0.05)),
    _id("eye_tilt", *_sym("eye_socket", "rot", "z", 14.0)),
    _id("eye_openness", *_sym("lid_up", "rot", "x", -14.0 * LID_UP_CLOSE)),
    _id("lower_lid_height", *_sym("lid_lo", "rot", "x", 10.0 * LID_LO_RAISE)),
    _id("eye_protrusion", *_sym("eye", "loc", "z", 0.025)),
    _id("nose_length", ("nose", "scale", "y", 0.25)),
    _id("nose_width", ("nose", "scale", "x", 0.35)),
    _id("nose_depth", ("nose", "scale", "z", 0.35)),
    _id("nose_bridge_height", ("nose", "loc", "z", 0.05)),
    _id("nose_position", ("nose", "loc", "y", 0.05)),
    _id("nose_tip_height", ("nose_tip", "loc", "y", 0.05)),
    _id("nose_tip_projection", ("nose_tip", "loc", "z", 0.06)),
    _id(
        "nose_tip_size",
        ("nose_tip", "scale", "x", 0.4),
        ("nose_tip", "scale", "y", 0.4),
        ("nose_tip", "scale", "z", 0.4),
    ),
    _id("nose_upturn", ("nose_tip", "rot", "x", 20.0)),
    _id("nostril_width", *_sym("nostril", "loc", "x", 0.05)),
    _id("nostril_height", *_sym("nostril", "loc", "y", 0.03)),
    _id("nostril_flare", *_sym("nostril", "scale", "x", 0.4), *_sym("nostril", "scale", "z", 0.4)),
    _id(
        "mouth_width",
        *_sym("corner", "loc", "x", 0.07),
        *_sym("lip_up", "loc", "x", 0.03),
        *_sym("lip_lo", "loc", "x", 0.03),
    ),
    _id(
        "mouth_height",
        ("mouth", "loc", "y", 0.08),
        ("lip_lo", "loc", "y", 0.08),
        *_sym("lip_lo", "loc", "y", 0.08),
    ),
    _id(
        "mouth_depth",
        ("mouth", "loc", "z", 0.05),
        ("lip_lo", "loc", "z", 0.05),
        *_sym("lip_lo", "loc", "z", 0.05),
    ),
    _id("upper_lip_thickness", ("lip_up", "scale", "y", 0.6), *_sym("lip_up", "scale", "y", 0.6)),
    _id("lower_lip_thickness", ("lip_lo", "scale", "y", 0.6), *_sym("lip_lo", "scale", "y", 0.6)),
    _id("upper_lip_protrusion", ("lip_up", "loc", "z", 0.04), *_sym("lip_up", "loc", "z", 0.04)),
    _id("lower_lip_protrusion", ("lip_lo", "loc", "z", 0.04), *_sym("lip_lo", "loc", "z", 0.04)),
    _id("mouth_corner_tilt", *_sym("corner", "loc", "y", 0.04)),
    _id("mouth_corner_depth", *_sym("corner", "loc", "z", 0.04)),
    _id("cupid_bow", *_sym("lip_up", "loc", "y", 0.025)),
    _id("upper_lip_height", ("lip_up", "loc", "y", 0.03)),
    _id("lower_lip_height", ("lip_lo", "loc", "y", 0.03)),
    _id("cheek_fullness", *_sym("cheek", "loc", "x", 0.04), *_sym("cheek", "loc", "z", 0.04)),
    _id("cheek_height", *_sym("cheek", "loc", "y", 0.06)),
    _id("cheek_size", *_sym("cheek", "scale", "x", 0.4), *_sym("cheek", "scale", "y", 0.4)),
    _id("cheekbone_width", *_sym("cheekbone", "loc", "x", 0.06)),
    _id("cheekbone_height", *_sym("cheekbone", "loc", "y", 0.06)),
    _id("cheekbone_prominence", *_sym("cheekbone", "loc", "z", 0.05)),
    _id("jaw_width", *_sym("jaw_angle", "loc", "x", 0.08)),
    _id("jaw_angle_height", *_sym("jaw_angle", "loc", "y", 0.08)),
    _id("jaw_protrusion", ("jaw", "loc", "z", 0.05)),
    _id("lower_face_width", ("jaw", "scale", "x", 0.15)),
    _id("chin_height", ("chin", "loc", "y", -0.07)),
    _id("chin_width", ("chin", "scale", "x", 0.5)),
    _id("chin_protrusion", ("chin", "loc", "z", 0.06)),
    _id("chin_depth", ("chin", "scale", "z", 0.4)),
    _id("neck_width", ("neck", "scale", "x", 0.2), ("neck", "scale", "z", 0.2)),
]

# Discrete brow style: (style index, bone, channel, axis, gain); index 0 is the base brow.
BROW_STYLES: list[str] = ["straight", "arched", "angled", "thick", "thin"]
BROW_STYLE_EFFECTS: list[tuple[int, str, str, str, float]] = [
    *[(1, *e) for e in _sym("brow_mid", "loc", "y", 0.035) + _sym("brow_out", "loc", "y", -0.012)],
    *[(2, *e) for e in _sym("brow_out", "loc", "y", 0.03) + _sym("brow_in", "loc", "y", -0.015)],
    *[
        (3, *e)
        for e in _sym("brow_in", "scale", "y", 0.6)
        + _sym("brow_mid", "scale", "y", 0.6)
        + _sym("brow_out", "scale", "y", 0.5)
    ],
    *[
        (4, *e)
        for e in _sym("brow_in", "scale", "y", -0.45)
        + _sym("brow_mid", "scale", "y", -0.45)
        + _sym("brow_out", "scale", "y", -0.45)
    ],
]

# Segmentation labels (id -> name). Ids are stable: they are written into masks.
LABELS: list[str] = [
    "background",
    "skin",
    "brow_l",
    "brow_r",
    "eye_l",
    "eye_r",
    "nose",
    "upper_lip",
    "lower_lip",
    "inner_mouth",
    "hair",
    "neck",
]
