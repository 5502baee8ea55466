"""Which onnxruntime each extension zip carries and what the zip is called: the CPU build by
default on every platform, onnxruntime-gpu only in the separately named -cuda zips."""

from __future__ import annotations

import inspect
import tomllib
import zipfile
from pathlib import Path

import pytest

from au_retarget_addon import packaging
from au_retarget_addon.packaging import (
    ORT_CPU,
    ORT_GPU,
    PLATFORMS,
    PackagingError,
    build,
    ort_requirement,
    zip_name,
)

MAX_ZIP_BYTES = 200 * 1000 * 1000


def test_default_build_is_cpu_onnxruntime_on_every_platform():
    assert inspect.signature(build).parameters["onnxruntime"].default == "cpu"
    for name, plat in PLATFORMS.items():
        assert ort_requirement(plat, "cpu") == ORT_CPU
        assert zip_name("0.1.0", plat, "cpu") == f"au_retarget-0.1.0-{name}.zip"
    assert ORT_CPU.startswith("onnxruntime==")


@pytest.mark.parametrize("name", ["linux-x64", "windows-x64"])
def test_cuda_build_has_its_own_name_and_the_gpu_wheel(name):
    plat = PLATFORMS[name]
    assert ort_requirement(plat, "gpu") == ORT_GPU
    assert zip_name("0.1.0", plat, "gpu") == f"au_retarget-0.1.0-{name}-cuda.zip"


def test_cuda_build_is_refused_where_onnxruntime_has_no_cuda(tmp_path, capsys):
    with pytest.raises(PackagingError, match="macos-arm64 has no CUDA build"):
        zip_name("0.1.0", PLATFORMS["macos-arm64"], "gpu")
    with pytest.raises(PackagingError, match="onnxruntime must be one of"):
        ort_requirement(PLATFORMS["linux-x64"], "rocm")
    # refused before anything is fetched or built, as one line on stderr
    code = packaging.main(["--cuda", "--platform", "macos-arm64", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("packaging: error: macos-arm64 has no CUDA build")
    assert "Traceback" not in err and not list(tmp_path.iterdir())


def test_help_says_what_the_cuda_build_needs(capsys):
    with pytest.raises(SystemExit):
        packaging.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--cuda" in text and "-cuda.zip" in text
    assert "CUDA 13 and cuDNN 9" in text and "libcudnn.so.9" in text


def _built(zip_path: Path) -> tuple[dict, list[str]]:
    with zipfile.ZipFile(zip_path) as z:
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
        wheels = [n.split("/")[1] for n in z.namelist() if n.startswith("wheels/")]
    return manifest, wheels


@pytest.mark.blender
def test_default_linux_zip_ships_cpu_onnxruntime_under_200_mb(tmp_path):
    (path,) = build(tmp_path, ["linux-x64"])
    assert path.name == "au_retarget-0.1.0-linux-x64.zip"
    manifest, wheels = _built(path)
    assert manifest["id"] == "au_retarget" and manifest["platforms"] == ["linux-x64"]
    assert sorted(w.split("-")[0] for w in wheels) == ["onnxruntime", "opencv_python_headless"]
    assert path.stat().st_size < MAX_ZIP_BYTES, f"{path.stat().st_size / 1e6:.1f} MB"


@pytest.mark.slow
@pytest.mark.blender
def test_cuda_linux_zip_is_the_same_extension_with_onnxruntime_gpu(tmp_path):
    """Downloads onnxruntime-gpu (about 256 MB) once into data/wheels."""
    (path,) = build(tmp_path, ["linux-x64"], onnxruntime="gpu")  # built and validated
    assert path.name == "au_retarget-0.1.0-linux-x64-cuda.zip"
    manifest, wheels = _built(path)
    assert manifest["id"] == "au_retarget"  # installing it replaces the CPU build
    assert sorted(w.split("-")[0] for w in wheels) == ["onnxruntime_gpu", "opencv_python_headless"]
