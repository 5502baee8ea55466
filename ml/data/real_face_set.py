"""The real-face set, tracked and cropped once: per clip every face the detector can follow
(ml/data/face_tracks.py), each given to a person of the set by seat, and each person's aligned
crops (the tracker's own MTCNN and 5-point alignment), cached outside the checkout.

    python -m ml.data.real_media fetch          # the clips (ml/configs/real_face_set.toml)
    python -m ml.data.real_face_set build       # detections, tracks, crops and the manifest
    python -m ml.data.real_face_set export --split train --size 128 --out data/real_faces.npz

Cache layout (`--cache`, default $AURT_CACHE/real_faces):
    detections/<clip>.npz        every face in every frame, keyed by the clip's sha256
    crops_<size>/<clip>.<person>.npz   aligned crops with frame, time, box, points, roll
    manifest.json                per clip: frames, tracks, and per person the frames with
                                 a face; per person: split and clips
Each file is written whole or not at all; a rerun decodes only what is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from au_retarget_addon.core.align import align_face, crop_roll
from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from au_retarget_addon.core.video import VideoError, VideoReader

from ml.cache import cache_dir
from ml.errors import MLError, exit_on_error
from ml.data.face_tracks import link, summarise
from ml.data.real_media import SET_FILE, RealFaceSet, fetch, load_set

log = logging.getLogger(__name__)

MIN_SCORE = 0.9  # detections below it are not faces of the set
MIN_TRACK = 3  # frames: shorter tracks are detector noise, given to nobody
MANIFEST = "manifest.json"


class RealFaceSetError(MLError, RuntimeError):
    """A clip of the set is missing, unreadable or has no face (names the clip)."""


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez_compressed, renamed into place once complete (umask-respecting mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.stem}.part.npz")
    try:
        np.savez_compressed(part, **arrays)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def _frames(path: Path, label: str) -> Any:
    try:
        reader = VideoReader(path)
    except VideoError as exc:
        raise RealFaceSetError(f"clip {label}: {exc}") from exc
    return reader


def detect_clip(
    path: Path, digest: str, out: Path, detector: FaceDetector, label: str
) -> dict[str, Any]:
    """Every face with score >= MIN_SCORE in every frame, cached in `out` under the clip's
    sha256 `digest` (the fetch has just checked the file against it)."""
    if out.is_file():
        with np.load(out) as z:
            if str(z["sha256"]) == digest:
                return {k: z[k] for k in z.files}
    rows: dict[str, list] = {"frame": [], "box": [], "points": [], "score": []}
    times = []
    with _frames(path, label) as reader:
        info = reader.info
        bar = tqdm(total=info.frame_count, desc=f"detect {label}", unit="frame", leave=False)
        try:
            for idx, t, rgb in reader.frames():
                times.append(t)
                for d in detector.detect(rgb):
                    if d.score >= MIN_SCORE:
                        rows["frame"].append(idx)
                        rows["box"].append(d.box)
                        rows["points"].append(d.points)
                        rows["score"].append(d.score)
                bar.update()
        except VideoError as exc:
            raise RealFaceSetError(f"clip {label}: {exc}") from exc
        finally:
            bar.close()
    result = {
        "sha256": np.array(digest),
        "frame": np.array(rows["frame"], np.int64),
        "box": np.array(rows["box"], np.float32).reshape(-1, 4),
        "points": np.array(rows["points"], np.float32).reshape(-1, 5, 2),
        "score": np.array(rows["score"], np.float32),
        "times": np.array(times, np.float64),
        "width": np.array(info.width),
        "fps": np.array(info.fps),
    }
    save_npz(out, **result)
    return result


def assign_people(
    rfs: RealFaceSet, clip: str, det: dict[str, Any]
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Rows of `det` per person, and the clip's tracks, each with its person or None.

    A person's tracks are those whose median centre lies in the person's seat, longest
    first, each taken only if it shares no frame with those already taken: one face per
    person per frame, so a second detection in the seat (a hand, a reflection) is dropped."""
    ids = link(det["frame"], det["box"], det["score"])
    tracks = summarise(ids, det["frame"], det["box"], int(det["width"]))
    owner: dict[int, str] = {}
    rows: dict[str, np.ndarray] = {}
    for person in rfs.people_in(clip):
        lo, hi = person.seats[clip]
        seen = np.zeros(0, np.int64)
        for t in tracks:  # longest first
            mine = np.flatnonzero(ids == t.id)
            if t.frames < MIN_TRACK or not lo <= t.centre_x < hi:
                continue
            if not np.isin(det["frame"][mine], det["frame"][seen]).any():
                owner[t.id] = person.name
                seen = np.concatenate([seen, mine])
        rows[person.name] = seen[np.argsort(det["frame"][seen], kind="stable")]
    return rows, [{**t.as_dict(), "person": owner.get(t.id)} for t in tracks]


def crop_clip(
    path: Path, det: dict[str, Any], rows: dict[str, np.ndarray], outs: dict[tuple[str, int], Path],
    label: str,
) -> None:  # fmt: skip
    """One decode of the clip: every (person, size) crop file in `outs` that is missing or
    was cut from other detections (its key: the clip's sha256 and the person's rows)."""
    keys = {k: _crop_key(det, rows[k[0]]) for k in outs}
    todo = {k: v for k, v in outs.items() if _stored_key(v) != keys[k]}
    if not todo:
        return
    by_frame: dict[int, list[tuple[str, int]]] = {}
    for person, r in rows.items():
        for row in r:
            by_frame.setdefault(int(det["frame"][row]), []).append((person, int(row)))
    got: dict[tuple[str, int], list[tuple[np.ndarray, float, int]]] = {k: [] for k in todo}
    with _frames(path, label) as reader:
        bar = tqdm(total=reader.info.frame_count, desc=f"crop {label}", unit="frame", leave=False)
        try:
            for idx, _, rgb in reader.frames():
                for person, row in by_frame.get(idx, []):
                    for person_size in todo:
                        if person_size[0] == person:
                            crop, m = align_face(rgb, det["points"][row], person_size[1])
                            got[person_size].append((crop, crop_roll(m), row))
                bar.update()
        except VideoError as exc:
            raise RealFaceSetError(f"clip {label}: {exc}") from exc
        finally:
            bar.close()
    for (person, size), items in got.items():
        r = np.array([row for _, _, row in items], np.int64)
        empty = np.zeros((0, size, size, 3), np.uint8)
        save_npz(
            todo[(person, size)],
            crops=np.stack([c for c, _, _ in items]) if items else empty,
            frames=det["frame"][r], times=det["times"][det["frame"][r]], boxes=det["box"][r],
            points=det["points"][r], scores=det["score"][r],
            rolls=np.array([roll for _, roll, _ in items], np.float32),
            key=np.array(keys[(person, size)]),
        )  # fmt: skip


def _crop_key(det: dict[str, Any], rows: np.ndarray) -> str:
    h = hashlib.sha256(str(det["sha256"]).encode())
    h.update(np.ascontiguousarray(det["frame"][rows]).tobytes())
    h.update(np.ascontiguousarray(det["points"][rows]).tobytes())
    return h.hexdigest()


def _stored_key(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return str(z["key"]) if "key" in z.files else None
    except (OSError, ValueError):
        return None  # a damaged cache file is made again


def crop_path(cache: Path, size: int, clip: str, person: str) -> Path:
    return cache / f"crops_{size}" / f"{clip}.{person}.npz"


def build(
    rfs: RealFaceSet, media: Path, cache: Path, sizes: tuple[int, ...] = (128,),
    clips: list[str] | None = None, detector: FaceDetector | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Detections, tracks and crops of `clips` (default: all); returns the manifest."""
    names = clips or list(rfs.clips)
    unknown = sorted(set(names) - set(rfs.clips))
    if unknown:
        raise RealFaceSetError(f"unknown clip(s) {unknown}; known: {sorted(rfs.clips)}")
    fetch(rfs, media, names)  # checks what is there by sha256, downloads what is not
    manifest = read_manifest(cache)
    for name in names:
        clip = rfs.clips[name]
        path = media / clip.filename
        detector = detector or FaceDetector(DEFAULT_MODEL_DIR)
        det = detect_clip(path, clip.sha256, cache / "detections" / f"{name}.npz", detector, name)
        rows, tracks = assign_people(rfs, name, det)
        outs = {(p, s): crop_path(cache, s, name, p) for p in rows for s in sizes}
        crop_clip(path, det, rows, outs, name)
        n = len(det["times"])
        found = np.zeros(n, bool)
        found[det["frame"]] = True
        manifest["clips"][name] = {
            "file": clip.filename, "frames": n, "fps": round(float(det["fps"]), 3),
            "size": list(clip.size), "frames_with_a_face": round(float(found.mean()), 4),
            "tracks": [t for t in tracks if t["frames"] >= det["fps"]],  # followed >= 1 s
            "short_tracks": int(sum(t["frames"] < det["fps"] for t in tracks)),
            "people": {
                p: {"frames": len(r), "fraction": round(len(r) / n, 4)} for p, r in rows.items()
            },
            "content": clip.content, "terms": clip.terms,
            "licence": rfs.packages[clip.package].licence,
        }  # fmt: skip
    manifest["people"] = {
        p.name: {"split": p.split, "clips": sorted(p.seats)} for p in rfs.people.values()
    }
    write_manifest(cache, manifest)
    return manifest


def read_manifest(cache: Path) -> dict[str, Any]:
    path = cache / MANIFEST
    if not path.is_file():
        return {"clips": {}, "people": {}}
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise RealFaceSetError(f"manifest {path} cannot be read ({exc}); delete it") from exc


def write_manifest(cache: Path, manifest: dict[str, Any]) -> None:
    path = cache / MANIFEST
    part = path.with_name(f".{MANIFEST}.part")
    part.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    os.replace(part, path)


def load_crops(cache: Path, size: int, clip: str, person: str) -> dict[str, np.ndarray]:
    """One person's crops in one clip: crops, frames, times, boxes, points, scores, rolls."""
    path = crop_path(cache, size, clip, person)
    if not path.is_file():
        raise RealFaceSetError(
            f"no {size} px crops of {person} in {clip} ({path}); run "
            f"`python -m ml.data.real_face_set build --sizes {size}`"
        )
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def export(
    rfs: RealFaceSet, cache: Path, split: str, size: int, step: int, out: Path,
    clips: list[str] | None = None, progress: Callable[[str], None] = log.info,
) -> int:  # fmt: skip
    """The split's crops (every `step`-th of each track; only `clips`, if given) as one
    .npz that ml.data.real_faces.RealFaces reads: crops and names 'clip#frame@person'."""
    crops, names = [], []
    for clip, person in split_clips(rfs, split, clips):
        z = load_crops(cache, size, clip, person)
        crops.append(z["crops"][::step])
        names += [f"{clip}#{f}@{person}" for f in z["frames"][::step]]
        progress(f"{clip} {person}: {len(z['crops'][::step])} crops")
    if not names:
        raise RealFaceSetError(f"the {split} split has no crops at {size} px")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_npz(out, crops=np.concatenate(crops), names=np.array(names))
    return len(names)


def split_clips(rfs: RealFaceSet, split: str, clips: list[str] | None) -> list[tuple[str, str]]:
    """(clip, person) of the split, only in `clips` if given (each must be in the set)."""
    unknown = sorted(set(clips or []) - set(rfs.clips))
    if unknown:
        raise RealFaceSetError(f"unknown clip(s) {unknown}; known: {sorted(rfs.clips)}")
    return [(c, p) for c, p in rfs.split_of(split) if not clips or c in clips]


def provenance(names: list[str], rfs: RealFaceSet | None = None) -> list[dict[str, Any]]:
    """Per clip of the set that crop names ('clip#frame@person') come from: the crops, the
    people, the file's source, the package licence and the footage's terms (model cards)."""
    rfs = rfs or load_set()
    used: dict[str, dict[str, int]] = {}
    for n in map(str, names):
        clip, person = n.partition("#")[0], n.rpartition("@")[2]
        if "@" in n and clip in rfs.clips:
            people = used.setdefault(clip, {})
            people[person] = people.get(person, 0) + 1
    out = []
    for clip, people in used.items():
        c, pkg = rfs.clips[clip], rfs.packages[rfs.clips[clip].package]
        out.append({
            "clip": clip, "crops": sum(people.values()), "people": sorted(people),
            "file": f"{pkg.spec} ({pkg.registry}): {c.member}", "sha256": c.sha256,
            "package_licence": pkg.licence, "footage_terms": c.terms,
        })  # fmt: skip
    return out


def summary_table(rfs: RealFaceSet, manifest: dict[str, Any]) -> str:
    lines = [
        "| clip | frames | with a face | tracks >= 1 s | person | split | frames of the person |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for name, c in manifest["clips"].items():
        for person, p in c["people"].items():
            split = rfs.people[person].split if person in rfs.people else "?"
            lines.append(
                f"| {name} | {c['frames']} | {c['frames_with_a_face']:.1%} | {len(c['tracks'])} "
                f"| {person} | {split} | {p['frames']} ({p['fraction']:.1%}) |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.data.real_face_set", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--set", type=Path, default=SET_FILE, help="the set's definition")
    ap.add_argument("--media", type=Path, default=None, help="default: $AURT_CACHE/real_media")
    ap.add_argument("--cache", type=Path, default=None, help="default: $AURT_CACHE/real_faces")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="track and crop the clips; print the manifest's table")
    b.add_argument("--clips", nargs="+", default=None)
    b.add_argument("--sizes", type=int, nargs="+", default=[128])
    e = sub.add_parser("export", help="one split's crops as a real_faces .npz (builds first)")
    e.add_argument("--split", choices=("train", "heldout", "all"), default="train")
    e.add_argument("--size", type=int, default=128)
    e.add_argument("--step", type=int, default=1, help="every step-th crop of each track")
    e.add_argument("--clips", nargs="+", default=None, help="only these clips of the split")
    e.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    media = args.media or cache_dir("real_media")
    cache = args.cache or cache_dir("real_faces")
    rfs = load_set(args.set)
    if args.cmd == "build":
        if min(args.sizes) < 16:
            raise RealFaceSetError(f"--sizes must be at least 16 px, not {min(args.sizes)}")
        manifest = build(rfs, media, cache, tuple(args.sizes), args.clips)
        print(summary_table(rfs, manifest))
        size = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
        print(f"cache {cache}: {size / 1e6:.1f} MB")
        return 0
    if args.step < 1 or args.size < 16:
        raise RealFaceSetError(
            f"--step must be >= 1 and --size >= 16 (got {args.step}, {args.size})"
        )
    clips = sorted({c for c, _ in split_clips(rfs, args.split, args.clips)})
    build(rfs, media, cache, (args.size,), clips)
    n = export(rfs, cache, args.split, args.size, args.step, args.out, args.clips)
    print(f"wrote {args.out}: {n} crops of the {args.split} people")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.data.real_face_set", main))
