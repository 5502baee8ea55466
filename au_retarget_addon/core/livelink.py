"""Live Link Face CSV files: the take layout Epic's Live Link Face iPhone app records
(ARKit face tracking), which Faceit, Diffeomorphic and Unreal's importers read.

Layout: a header row, then one row per captured frame:

    Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,
    LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll
    00:00:01:02.000,61,0.01230000,...

63 columns: the timecode, the number of values that follow (61; 0 in a row without a
face), the 52 ARKit blendshape weights (0..1) in the app's own column order (`BLENDSHAPES`:
it writes JawRight before JawLeft and MouthRight before MouthLeft, unlike ARKit's and
Unreal's `EARFaceBlendShape` enumeration), then head and eye angles (`ANGLES`). Reading
matches column names case-insensitively and in any order ("BlendshapeCount" and camelCase
names occur in the wild).

Timecode: `HH:MM:SS:FF.fff`, the time of day of the capture with `FF` the frame within the
second counted at the timecode rate (60 per second by default in the app: `RATE`) and
`.fff` thousandths of a frame; t = 3600 HH + 60 MM + SS + FF.fff / rate seconds. Exports
start at the take's time (a video's tracks: the video time of their first frame).

Angles are in radians (Faceit reads them as radians, Diffeomorphic keys them on bones as
radians unconverted). Signs, for a face looking at the camera: pitch + tilts the chin (the
eyes) up, yaw + turns the face (the eyes) toward the face's own right, roll + tilts the top
of the head toward the face's own left; eye angles are relative to the head. Pitch and yaw
signs are those Faceit's and Diffeomorphic's importers apply; roll follows Faceit's (its
signs are the right-handed ARKit angles negated, as for pitch and yaw); the eye signs are
taken to be the head's. Our parameters (rig spec, degrees): head_yaw + turns toward the
face's own left, head_pitch + chin up, head_roll + top of the head toward image left (the
face's own right), gaze likewise. So HeadYaw = -radians(head_yaw), HeadPitch =
radians(head_pitch), HeadRoll = -radians(head_roll), both eyes' yaw = -radians(gaze_yaw),
pitch = radians(gaze_pitch), eye roll 0 (`SIGNS`).

Export (`from_parameters`): blendshape weights through a mapping from our parameters to
the ARKit names (the shipped `mappings/arkit.toml`), clipped to 0..1; names the mapping
lacks are written as 0. Rows without a face are left out.

Import (`to_parameters`, `to_tracks`): 52 blendshapes cannot be turned back into our AUs
exactly, so an import is the take, in our parameters, that best reproduces the capture
through the same mapping: head pose and gaze from the angles (the mean of both eyes);
the AUs are the bounded least-squares solution of mapping(AUs) = weights over the
blendshapes whose mapping reads an AU, each AU kept in its range. A weight at a clamp bound
(0 or 1) only asks the unclamped value to be at or beyond it, so jawLeft 0.6 with jawRight
0 gives AD30 0.6. Blendshapes driven by gaze alone (eyeLook*, the angles give the gaze) or
by nothing (jawForward, mouthLeft/Right, cheekPuff, tongueOut) are not used, an AU no
blendshape reads (AU25) is 0, and a blendshape pair that one AU drives (mouthPressLeft and
Right) gives their mean. The result is a take like a tracked one, keyed on the face rig
through the same code path, so bake and retarget treat iPhone captures and tracked videos
alike; retargeting it to an ARKit character gives back the capture's weights wherever the
mapping can express them.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write
from .mapping import Mapping, load_mapping
from .tracks import Tracks, TracksError, read_npz

RATE = 60  # timecode frames per second (the app's default)
DEFAULT_MAPPING = Path(__file__).resolve().parents[1] / "mappings" / "arkit.toml"
BLENDSHAPES = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
    "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight", "JawForward",
    "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight",
    "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft",
    "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft",
    "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft",
    "NoseSneerRight", "TongueOut",
)  # fmt: skip
ANGLES = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip
HEADER = ("Timecode", "BlendShapeCount", *BLENDSHAPES, *ANGLES)
# our parameter -> (the angle columns it gives, sign): angle = sign * radians(parameter)
SIGNS: dict[str, tuple[tuple[str, ...], float]] = {
    "head_yaw": (("HeadYaw",), -1.0),
    "head_pitch": (("HeadPitch",), 1.0),
    "head_roll": (("HeadRoll",), -1.0),
    "gaze_yaw": (("LeftEyeYaw", "RightEyeYaw"), -1.0),
    "gaze_pitch": (("LeftEyePitch", "RightEyePitch"), 1.0),
}
_TIMECODE = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}):(\d+)(?:\.(\d+))?$")
_AT_BOUND = 1e-6  # a weight this close to a clamp bound counts as clamped


class LiveLinkError(ValueError):
    """A Live Link Face CSV file is wrong (names the file, row and column)."""


@dataclass
class LiveLinkTake:
    """One Live Link Face take: per row its time, blendshape weights and angles."""

    times: np.ndarray  # (T,) seconds
    weights: np.ndarray  # (T, 52) in BLENDSHAPES order, 0..1
    angles: np.ndarray  # (T, 9) in ANGLES order, radians
    found: np.ndarray  # (T,) bool: the row has a face (BlendShapeCount > 0)
    rate: int = RATE


def format_timecode(seconds: float, rate: int = RATE) -> str:
    """`HH:MM:SS:FF.fff` for a time in seconds at `rate` timecode frames per second."""
    milli = int(round(seconds * rate * 1000))  # thousandths of a frame
    frames, fraction = divmod(milli, 1000)
    whole, frame = divmod(frames, rate)
    minutes, sec = divmod(whole, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours:02d}:{minute:02d}:{sec:02d}:{frame:02d}.{fraction:03d}"


def parse_timecode(text: str, rate: int = RATE) -> float:
    """Seconds for `HH:MM:SS:FF[.fff]`; a ValueError saying what is wrong."""
    m = _TIMECODE.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a timecode HH:MM:SS:FF.fff")
    hours, minutes, sec, frame = (int(g) for g in m.groups()[:4])
    fraction = int(m[5]) / 10 ** len(m[5]) if m[5] else 0.0
    if minutes >= 60 or sec >= 60:
        raise ValueError(f"{text!r}: minutes and seconds must be below 60")
    if frame >= rate:
        raise ValueError(
            f"{text!r}: frame {frame} is not below the timecode rate {rate} "
            "(give the rate the take was recorded with)"
        )
    return 3600.0 * hours + 60.0 * minutes + sec + (frame + fraction) / rate


def _check_rate(rate: int) -> None:
    if not (isinstance(rate, int | np.integer) and rate > 0):
        raise LiveLinkError(f"timecode rate must be a whole number above 0, got {rate!r}")


def _target_columns(mapping: Mapping) -> dict[int, int]:
    """Mapping target index -> BLENDSHAPES column, matching names case-insensitively."""
    column = {name.lower(): j for j, name in enumerate(BLENDSHAPES)}
    return {
        i: column[t.name.lower()] for i, t in enumerate(mapping.targets) if t.name.lower() in column
    }


def from_parameters(
    names: list[str], values: np.ndarray, times: np.ndarray, mapping: Mapping, rate: int = RATE
) -> LiveLinkTake:
    """Our parameters per frame ((T, P) in `names` order, NaN rows: no face) -> a take:
    weights through `mapping` clipped to 0..1, head pose and gaze as angles (`SIGNS`)."""
    _check_rate(rate)
    columns = _target_columns(mapping)
    if not columns:
        raise LiveLinkError(f"mapping {mapping.name!r} names none of the 52 ARKit blendshapes")
    values = np.asarray(values, np.float64)
    keep = ~np.isnan(values).all(axis=1) if values.size else np.zeros(len(values), bool)
    values, times = values[keep], np.asarray(times, np.float64)[keep]
    weights = np.zeros((len(values), len(BLENDSHAPES)))
    out = mapping.evaluate(names, values)
    for i, j in columns.items():
        weights[:, j] = out[:, i]
    weights = np.clip(np.nan_to_num(weights), 0.0, 1.0)
    angles = np.zeros((len(values), len(ANGLES)))
    col = {n: i for i, n in enumerate(names)}
    for name, (angle_names, sign) in SIGNS.items():
        if name in col:
            for c in angle_names:
                angles[:, ANGLES.index(c)] = sign * np.radians(np.nan_to_num(values[:, col[name]]))
    return LiveLinkTake(times, weights, angles, np.ones(len(values), bool), rate)


def write_livelink(path: str | Path, take: LiveLinkTake) -> None:
    """Write `take` as a Live Link Face CSV file (whole or not at all)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            for i in range(len(take.times)):
                count = len(BLENDSHAPES) + len(ANGLES) if take.found[i] else 0
                cells = [f"{x:.8f}" for x in (*take.weights[i], *take.angles[i])]
                w.writerow([format_timecode(take.times[i], take.rate), count, *cells])

    atomic_write(Path(path), write)


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file, each with the line it ends on."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        return [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]


def _header_columns(path: Path, header: list[str]) -> list[int]:
    """The file column of each HEADER entry; a LiveLinkError for a wrong header."""
    where = f"{path} row 1"
    for c, want in enumerate(HEADER[:2]):
        got = header[c].strip() if c < len(header) else ""
        if got.lower() != want.lower():
            raise LiveLinkError(
                f"{where}, column {c + 1}: expected {want!r}, found {got!r} "
                "(not a Live Link Face CSV file)"
            )
    index: dict[str, int] = {}
    for c, name in enumerate(header):
        key = name.strip().lower()
        if key in index and key:
            raise LiveLinkError(f"{where}, column {c + 1}: {name.strip()!r} appears twice")
        index[key] = c
    missing = [n for n in HEADER if n.lower() not in index]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise LiveLinkError(f"{where}: missing column(s) {', '.join(missing[:5])}{more}")
    return [index[n.lower()] for n in HEADER]


def read_livelink(path: str | Path, rate: int = RATE) -> LiveLinkTake:
    """Read a Live Link Face CSV file; times are seconds from its first row (a take that
    runs past midnight goes on counting). A LiveLinkError names the file, row and column
    of what is wrong."""
    _check_rate(rate)
    path = Path(path)
    try:
        rows = _read_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LiveLinkError(f"{path} cannot be read: {exc}") from exc
    if not rows:
        raise LiveLinkError(f"{path} is empty: not a Live Link Face CSV file")
    header = rows[0][1]
    columns = _header_columns(path, header)
    if len(rows) < 2:
        raise LiveLinkError(f"{path} has a header but no rows")
    count = len(BLENDSHAPES) + len(ANGLES)
    times = np.empty(len(rows) - 1)
    data = np.zeros((len(rows) - 1, count))
    found = np.zeros(len(rows) - 1, bool)
    for i, (line, row) in enumerate(rows[1:]):
        if len(row) != len(header):
            raise LiveLinkError(
                f"{path} row {line}: {len(row)} cells, the header has {len(header)}"
            )

        def cell(k: int, row: list[str] = row, line: int = line) -> tuple[str, str]:
            c = columns[k]
            return row[c].strip(), f"{path} row {line}, column {c + 1} ({HEADER[k]})"

        text, where = cell(0)
        try:
            times[i] = parse_timecode(text, rate)
        except ValueError as exc:
            raise LiveLinkError(f"{where}: {exc}") from None
        text, where = cell(1)
        try:
            shapes = int(float(text))
        except ValueError:
            raise LiveLinkError(f"{where}: {text!r} is not a whole number") from None
        found[i] = shapes > 0
        if not found[i]:
            continue
        for k in range(count):
            text, where = cell(k + 2)
            try:
                value = float(text)
            except ValueError:
                raise LiveLinkError(f"{where}: {text!r} is not a number") from None
            if not math.isfinite(value):
                raise LiveLinkError(f"{where}: {text!r} is not a finite number")
            data[i, k] = value
    times = _unwrap_days(path, times, [line for line, _ in rows[1:]])
    nb = len(BLENDSHAPES)
    return LiveLinkTake(times - times[0], data[:, :nb], data[:, nb:], found, rate)


def _unwrap_days(path: Path, times: np.ndarray, lines: list[int]) -> np.ndarray:
    """Times of day -> times that keep rising past midnight; an error where they go back."""
    step = np.diff(times)
    wrapped = step < -43200.0  # more than 12 hours back: the next day
    times = times + 86400.0 * np.concatenate([[0], np.cumsum(wrapped)])
    back = np.flatnonzero(np.diff(times) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise LiveLinkError(
            f"{path} row {lines[i]}, column 1 (Timecode): the timecode goes back in time "
            f"({format_timecode(times[i - 1] % 86400)} before it)"
        )
    return times


def _solve(
    a: np.ndarray,
    base: np.ndarray,
    w: np.ndarray,
    clamp: np.ndarray,
    bounds: np.ndarray,
    iterations: int = 1000,
    tol: float = 1e-10,
) -> np.ndarray:
    """x (T, P) minimising, per row, sum over targets k of the squared distance from
    base + a @ x to w, within `bounds` (P, 2). A w at its target's clamp bound (K, 2) only
    asks to be at or beyond it. Projected gradient descent from 0 (which also splits a
    weight evenly among parameters that read it alike)."""
    at_lo = w <= clamp[:, 0] + _AT_BOUND
    at_hi = ~at_lo & (w >= clamp[:, 1] - _AT_BOUND)
    step = 1.0 / max(float(np.linalg.norm(a, 2)) ** 2, 1e-12)
    x = np.clip(np.zeros((len(w), a.shape[1])), bounds[:, 0], bounds[:, 1])
    for _ in range(iterations):
        z = base + x @ a.T
        g = np.where(
            at_lo,
            np.maximum(z - clamp[:, 0], 0.0),
            np.where(at_hi, np.minimum(z - clamp[:, 1], 0.0), z - w),
        )
        new = np.clip(x - step * (g @ a), bounds[:, 0], bounds[:, 1])
        done = float(np.abs(new - x).max(initial=0.0)) < tol
        x = new
        if done:
            break
    return x


def to_parameters(
    take: LiveLinkTake,
    mapping: Mapping,
    names: list[str],
    ranges: dict[str, Any],
) -> np.ndarray:
    """A take -> (T, P) values of our parameters `names`, each within `ranges`: head pose
    and gaze from the angles, the rest by inverting `mapping` (see the module docstring).
    Rows without a face are NaN."""
    col = {n: i for i, n in enumerate(names)}
    lo_hi = np.array([ranges.get(n, (-np.inf, np.inf)) for n in names], np.float64).reshape(-1, 2)
    values = np.zeros((len(take.times), len(names)))
    for name, (angle_names, sign) in SIGNS.items():
        if name in col:
            idx = [ANGLES.index(c) for c in angle_names]
            values[:, col[name]] = np.degrees(sign * take.angles[:, idx].mean(axis=1))
    known = [n for n in names if n in SIGNS]
    solve = [n for n in names if n not in SIGNS]
    targets = [
        (i, j)
        for i, j in _target_columns(mapping).items()
        if any(p in solve for p in mapping.targets[i].source)
        and all(p in col for p in mapping.targets[i].source)
    ]
    if solve and targets:
        a = np.zeros((len(targets), len(solve)))
        base = np.zeros((len(take.times), len(targets)))
        clamp = np.empty((len(targets), 2))
        for k, (i, _) in enumerate(targets):
            t = mapping.targets[i]
            base[:, k] = t.offset
            clamp[k] = t.clamp if t.clamp is not None else (-np.inf, np.inf)
            for p, weight in t.source.items():
                if p in known:
                    base[:, k] += weight * values[:, col[p]]
                else:
                    a[k, solve.index(p)] = weight
        w = take.weights[:, [j for _, j in targets]]
        bounds = lo_hi[[col[n] for n in solve]]
        x = _solve(a, base, w, clamp, bounds)
        for k, n in enumerate(solve):
            values[:, col[n]] = x[:, k]
    values = np.clip(values, lo_hi[:, 0], lo_hi[:, 1])
    values[~take.found] = np.nan
    return values


def keyed_names(card: dict[str, Any]) -> list[str]:
    """The parameters a take keys: head pose, gaze and the AUs, in the card's order."""
    groups = card.get("groups", {})
    return [n for g in ("pose", "gaze", "au") for n in groups.get(g, [])]


def to_tracks(take: LiveLinkTake, mapping: Mapping, card: dict[str, Any]) -> Tracks:
    """A take as a tracks table of the card's head pose, gaze and AU parameters."""
    names = keyed_names(card)
    values = to_parameters(take, mapping, names, card.get("ranges", {}))
    step = np.diff(take.times)
    step = step[step > 0]
    fps = 1.0 / float(np.median(step)) if len(step) else float(take.rate)
    return Tracks(
        np.arange(len(take.times)),
        take.times.copy(),
        names,
        values,
        take.found.astype(np.float64),
        fps,
    )


def read_tracks_file(path: str | Path) -> Tracks:
    """A tracks table written by `track` (.npz, or .csv: frame, time, confidence, then one
    column per parameter, empty cells where no face was found). A TracksError names the
    file, row and column of what is wrong."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        try:
            return read_npz(path)
        except (OSError, KeyError, ValueError) as exc:
            raise TracksError(f"{path} is not a tracks file written by `track`: {exc}") from exc
    try:
        rows = _read_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TracksError(f"{path} cannot be read: {exc}") from exc
    head = ["frame", "time", "confidence"]
    if not rows or [c.strip().lower() for c in rows[0][1][:3]] != head or len(rows[0][1]) < 4:
        raise TracksError(
            f"{path} row 1: expected the columns frame, time, confidence and then the "
            "parameters (a tracks CSV written by `track`)"
        )
    header = [c.strip() for c in rows[0][1]]
    table = np.full((len(rows) - 1, len(header)), np.nan)
    for i, (line, row) in enumerate(rows[1:]):
        if len(row) != len(header):
            raise TracksError(f"{path} row {line}: {len(row)} cells, the header has {len(header)}")
        for c, text in enumerate(row):
            text = text.strip()
            if text == "" and c >= 3:
                continue  # no face in this frame
            try:
                table[i, c] = float(text)
            except ValueError:
                raise TracksError(
                    f"{path} row {line}, column {c + 1} ({header[c]}): {text!r} is not a number"
                ) from None
    if len(table) == 0:
        raise TracksError(f"{path} has a header but no frames")
    times = table[:, 1]
    step = np.diff(times)
    step = step[step > 0]
    fps = 1.0 / float(np.median(step)) if len(step) else 30.0
    return Tracks(table[:, 0].astype(np.int64), times, header[3:], table[:, 3:], table[:, 2], fps)


def export_tracks(
    tracks: Tracks, out: str | Path, mapping: Mapping | None = None, rate: int = RATE
) -> LiveLinkTake:
    """Write a tracks table as a Live Link Face CSV file; returns the take written."""
    mapping = mapping if mapping is not None else load_mapping(DEFAULT_MAPPING)
    take = from_parameters(tracks.names, tracks.values, tracks.times, mapping, rate)
    if len(take.times) == 0:
        raise LiveLinkError(f"no frame of the tracks has a face: nothing to write to {out}")
    write_livelink(out, take)
    return take
