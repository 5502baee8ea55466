"""Build the Blender extension: dist/au_retarget-<version>-<platform>.zip per platform.

    python -m au_retarget_addon.packaging            # linux-x64, windows-x64, macos-arm64
    python -m au_retarget_addon.packaging --platform linux-x64 --model BUNDLE
    python -m au_retarget_addon.packaging --cuda     # linux-x64-cuda, windows-x64-cuda

Default zips carry the CPU build of onnxruntime on every platform. `--cuda` (the same as
`--onnxruntime gpu`) builds au_retarget-<version>-<platform>-cuda.zip for linux-x64 and
windows-x64 instead, with onnxruntime-gpu 1.31.1: its CUDA provider links to CUDA 13
(libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10, the driver's
libcuda.so.1) and opens cuDNN 9 (libcudnn.so.9) at run time, all of which the user installs;
without them the add-on runs on the CPU. Both builds share the manifest's `id`, so one
replaces the other in Blender.

Each zip is staged in a temporary folder: the add-on code (this file excluded), the rig
spec and builder (`rigs/`, copied in as a subpackage), the default model bundle, the MTCNN
detector (ONNX, converted by `make weights`), the manifest from the top of the repository
with that platform's `platforms` and `wheels` filled in, and the wheels themselves, fetched
from the package registry with pip (cached in data/wheels). Blender's own extension tool
(`blender_ext.py`, shipped in the bpy module) builds and then validates every zip. Nothing is
installed at run time: the wheels are all the add-on needs beside Blender's numpy.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "au_retarget_addon"
MANIFEST = REPO / "blender_manifest.toml"

# Pinned wheels. onnxruntime-gpu runs on the CPU too when CUDA is absent.
ORT_CPU = "onnxruntime==1.32.0"
ORT_GPU = "onnxruntime-gpu==1.31.1"
OPENCV = "opencv-python-headless==4.11.0.86"
# What ORT_GPU's CUDA provider needs (DT_NEEDED of libonnxruntime_providers_cuda.so and the
# cuDNN it opens): the user installs these beside the -cuda zip.
GPU_NEEDS = "CUDA 13 and cuDNN 9"
ONNXRUNTIMES = ("cpu", "gpu")


@dataclass(frozen=True)
class Platform:
    name: str  # Blender's platform name
    pip_platforms: tuple[str, ...]
    has_gpu_ort: bool


PLATFORMS = {
    p.name: p
    for p in (
        Platform(
            "linux-x64",
            ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
            True,
        ),
        Platform("windows-x64", ("win_amd64",), True),
        Platform(
            "macos-arm64", ("macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_11_0_arm64"), False
        ),
    )
}


class PackagingError(RuntimeError):
    """The extension cannot be built (names the file or step)."""


def blender_ext() -> Path:
    """Blender's extension command-line tool, from the installed bpy module."""
    import importlib.util

    found = importlib.util.find_spec("bpy")
    if found is None or found.origin is None:
        raise PackagingError("the bpy module is not installed; it ships blender_ext.py")
    base = Path(found.origin).parent
    hits = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not hits:
        raise PackagingError(f"blender_ext.py not found under {base}")
    return hits[-1]


def _check_onnxruntime(plat: Platform, onnxruntime: str) -> None:
    if onnxruntime not in ONNXRUNTIMES:
        raise PackagingError(f"onnxruntime must be one of {ONNXRUNTIMES}, not {onnxruntime!r}")
    if onnxruntime == "gpu" and not plat.has_gpu_ort:
        raise PackagingError(f"{plat.name} has no CUDA build of onnxruntime; build it with cpu")


def ort_requirement(plat: Platform, onnxruntime: str) -> str:
    """The pinned onnxruntime wheel for this platform and build (cpu or gpu)."""
    _check_onnxruntime(plat, onnxruntime)
    return ORT_GPU if onnxruntime == "gpu" else ORT_CPU


def zip_name(version: str, plat: Platform, onnxruntime: str) -> str:
    """au_retarget-<version>-<platform>.zip, with -cuda before .zip for the gpu build."""
    _check_onnxruntime(plat, onnxruntime)
    suffix = "-cuda" if onnxruntime == "gpu" else ""
    return f"au_retarget-{version}-{plat.name}{suffix}.zip"


def fetch_wheels(plat: Platform, onnxruntime: str, cache: Path) -> list[Path]:
    """Download this platform's wheels (no dependencies: Blender ships numpy)."""
    ort = ort_requirement(plat, onnxruntime)
    dest = cache / plat.name
    dest.mkdir(parents=True, exist_ok=True)
    wheels = []
    for req in (ort, OPENCV):
        name, version = req.split("==")
        stem = f"{name.replace('-', '_')}-{version}-"
        hits = sorted(dest.glob(stem + "*.whl"))
        if not hits:
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
            cmd += ["--only-binary=:all:", "--python-version", "3.11", "-d", str(dest)]
            cmd += [a for p in plat.pip_platforms for a in ("--platform", p)] + [req]
            res = subprocess.run(cmd, capture_output=True, text=True)
            hits = sorted(dest.glob(stem + "*.whl"))
            if res.returncode != 0 or not hits:
                raise PackagingError(
                    f"pip could not fetch {req} for {plat.name}: {res.stderr[-800:]}"
                )
        wheels.append(hits[-1])
    return wheels


def _manifest(plat: Platform, wheels: list[Path]) -> str:
    """The repository's manifest with this platform's `platforms` and `wheels` inserted
    before the first table (TOML keys must precede tables)."""
    text = MANIFEST.read_text()
    data = tomllib.loads(text)
    for key in ("platforms", "wheels"):
        if key in data:
            raise PackagingError(f"{MANIFEST}: '{key}' is filled in by the build; remove it")
    lines = text.splitlines()
    first_table = next(i for i, line in enumerate(lines) if line.startswith("["))
    extra = [
        f'platforms = ["{plat.name}"]',
        "wheels = [" + ", ".join(f'"./wheels/{w.name}"' for w in wheels) + "]",
        "",
    ]
    return "\n".join(lines[:first_table] + extra + lines[first_table:]) + "\n"


def stage(plat: Platform, wheels: list[Path], model: Path | None, root: Path) -> Path:
    """Lay out one platform's extension source folder under `root`."""
    src = root / "au_retarget"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "packaging.py", ".*")
    shutil.copytree(ADDON, src, ignore=ignore)
    shutil.copytree(REPO / "rigs", src / "rigs", ignore=ignore)
    if model is not None:
        if not model.is_dir():
            raise PackagingError(f"model bundle {model} is not a folder")
        shutil.rmtree(src / "models" / "default", ignore_errors=True)
        shutil.copytree(model, src / "models" / "default", ignore=ignore)
    for need in ("model.onnx", "model_card.json"):
        if not (src / "models" / "default" / need).is_file():
            raise PackagingError(
                f"no default model bundle ({need} missing in au_retarget_addon/models/default); "
                "run the recipe (python -m ml.recipe) or pass --model BUNDLE"
            )
    for name in ("pnet.onnx", "rnet.onnx", "onet.onnx"):
        if not (src / "models" / "mtcnn" / name).is_file():
            raise PackagingError(
                f"au_retarget_addon/models/mtcnn/{name} is missing; run `make weights` first"
            )
    (src / "wheels").mkdir()
    for w in wheels:
        shutil.copy2(w, src / "wheels" / w.name)
    (src / "blender_manifest.toml").write_text(_manifest(plat, wheels))
    return src


def _ext(*args: str) -> None:
    res = subprocess.run(
        [sys.executable, str(blender_ext()), *args], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise PackagingError(f"blender_ext {args[0]} failed: {(res.stdout + res.stderr)[-1500:]}")


def build(
    out: Path,
    platforms: list[str],
    onnxruntime: str = "cpu",
    model: Path | None = None,
    cache: Path = REPO / "data" / "wheels",
) -> list[Path]:
    """Build and validate one zip per platform (onnxruntime: cpu, or gpu for the -cuda
    zips); returns their paths."""
    version = tomllib.loads(MANIFEST.read_text())["version"]
    for name in platforms:
        if name not in PLATFORMS:
            raise PackagingError(f"unknown platform {name!r}: choose from {sorted(PLATFORMS)}")
        zip_name(version, PLATFORMS[name], onnxruntime)  # refuses gpu where there is none
    out.mkdir(parents=True, exist_ok=True)
    built = []
    for name in platforms:
        plat = PLATFORMS[name]
        wheels = fetch_wheels(plat, onnxruntime, cache)
        with tempfile.TemporaryDirectory(prefix="aurt_build_") as tmp:
            src = stage(plat, wheels, model, Path(tmp))
            zip_path = out / zip_name(version, plat, onnxruntime)
            zip_path.unlink(missing_ok=True)
            _ext("build", "--source-dir", str(src), "--output-filepath", str(zip_path))
            _ext("validate", str(zip_path))
        built.append(zip_path)
    return built


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m au_retarget_addon.packaging", description=__doc__.split("\n\n")[0]
    )
    gpu_platforms = [p.name for p in PLATFORMS.values() if p.has_gpu_ort]
    gpu_help = (
        f"{ORT_GPU.replace('==', ' ')} in au_retarget-<version>-<platform>-cuda.zip "
        f"({', '.join(gpu_platforms)}); it needs {GPU_NEEDS} on the user's machine "
        "(libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcudnn.so.9), else it runs "
        "on the CPU"
    )
    ap.add_argument("--out", type=Path, default=REPO / "dist")
    ap.add_argument(
        "--platform",
        nargs="+",
        choices=sorted(PLATFORMS),
        help=f"default: all ({', '.join(PLATFORMS)}); with --cuda: {', '.join(gpu_platforms)}",
    )
    ap.add_argument(
        "--onnxruntime",
        choices=ONNXRUNTIMES,
        default="cpu",
        help=f"cpu (default): {ORT_CPU.replace('==', ' ')} on every platform; gpu: {gpu_help}",
    )
    ap.add_argument(
        "--cuda",
        action="store_const",
        const="gpu",
        dest="onnxruntime",
        help=f"the same as --onnxruntime gpu (the user needs {GPU_NEEDS})",
    )
    ap.add_argument(
        "--model", type=Path, help="bundle to ship as the default (else the committed one)"
    )
    args = ap.parse_args(argv)
    platforms = args.platform or (gpu_platforms if args.onnxruntime == "gpu" else list(PLATFORMS))
    try:
        for path in build(args.out, platforms, args.onnxruntime, args.model):
            print(f"built {path} ({path.stat().st_size / 1e6:.1f} MB)")
    except PackagingError as exc:
        print(f"packaging: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
