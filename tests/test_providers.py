"""Execution provider choice with the real onnxruntime: CUDA only where its provider library
really loads, the CPU quietly otherwise, and a clear error when CUDA is asked for."""

from __future__ import annotations

import ctypes.util
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from au_retarget_addon.core import providers
from au_retarget_addon.core.bundle import BundleError, ModelBundle
from au_retarget_addon.core.detect import (
    DEFAULT_MODEL_DIR,
    DetectorConfig,
    DetectorError,
    FaceDetector,
)
from au_retarget_addon.core.providers import CPU, CUDA, ProviderError, load_error
from au_retarget_addon.resources import DEFAULT_BUNDLE

REPO = Path(__file__).resolve().parents[1]
CPU_ONLY = CUDA not in ort.get_available_providers()
needs_cpu_onnxruntime = pytest.mark.skipif(
    not CPU_ONLY, reason="onnxruntime here is the CUDA build; these tests need the CPU one"
)


def _need_mtcnn() -> None:
    if not (DEFAULT_MODEL_DIR / "pnet.onnx").is_file():
        pytest.skip(f"MTCNN models missing in {DEFAULT_MODEL_DIR}: run `make weights`")


def _cuda13_present() -> bool:
    return load_error("libcublasLt.so.13") is None


@needs_cpu_onnxruntime
def test_cpu_onnxruntime_runs_on_the_cpu_only():
    check = providers.cuda_check()
    assert not check.usable and "built without CUDA" in check.reason
    assert providers.execution_providers() == [CPU]
    assert providers.execution_providers("cpu") == [CPU]
    assert providers.cuda_check() is check  # probed once per process


@needs_cpu_onnxruntime
def test_sessions_write_nothing_to_stderr(capfd):
    _need_mtcnn()
    capfd.readouterr()
    detector = FaceDetector(DEFAULT_MODEL_DIR)
    assert detector.detect(np.zeros((120, 160, 3), np.uint8)) == []
    bundle = ModelBundle(DEFAULT_BUNDLE)
    size = bundle.input.size
    crops = np.zeros((1, size, size, 3), np.uint8)
    assert bundle.run(crops, crop_rolls=np.zeros(1)).shape == (1, len(bundle.names))
    for session in (detector.pnet, detector.rnet, detector.onet, bundle.session):
        assert session.get_providers() == [CPU]
    assert capfd.readouterr().err == ""


@needs_cpu_onnxruntime
def test_asking_for_cuda_names_the_reason():
    _need_mtcnn()
    with pytest.raises(BundleError) as err:
        ModelBundle(DEFAULT_BUNDLE, device="cuda")
    text = str(err.value)
    assert str(DEFAULT_BUNDLE) in text
    assert "the CUDA execution provider cannot load: this onnxruntime" in text
    assert "built without CUDA" in text and "choose CPU" in text
    with pytest.raises(DetectorError, match="MTCNN detector: the CUDA execution provider"):
        FaceDetector(DEFAULT_MODEL_DIR, DetectorConfig(device="cuda"))
    with pytest.raises(DetectorError, match="built without CUDA"):
        FaceDetector(DEFAULT_MODEL_DIR, DetectorConfig(providers=(CUDA, CPU)))
    # an explicit CPU list passes through untouched
    detector = FaceDetector(DEFAULT_MODEL_DIR, DetectorConfig(providers=(CPU,)))
    assert detector.pnet.get_providers() == [CPU]


def test_unknown_device_is_refused():
    with pytest.raises(ProviderError, match="unknown execution provider 'gpu'"):
        providers.execution_providers("gpu")
    with pytest.raises(BundleError, match="unknown execution provider"):
        ModelBundle(DEFAULT_BUNDLE, device="gpu")


@needs_cpu_onnxruntime
def test_choice_is_logged_once(caplog, monkeypatch):
    monkeypatch.setattr(providers, "_said", set())
    with caplog.at_level(logging.INFO, logger=providers.__name__):
        for _ in range(3):
            providers.execution_providers("auto")
    said = [r for r in caplog.records if r.name == providers.__name__]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert said[0].getMessage() == (
        f"onnxruntime runs on the CPU; CUDA skipped: this onnxruntime ({ort.__version__}) "
        "is built without CUDA"
    )


def test_load_error_keeps_the_loaders_message(tmp_path):
    fake = tmp_path / "libonnxruntime_providers_cuda.so"
    fake.write_bytes(b"this is not a shared library\n" * 40)
    error = load_error(fake)
    assert error is not None and str(fake) in error
    try:
        ctypes.CDLL(str(fake))
    except OSError as exc:
        assert error == str(exc)
    if sys.platform.startswith("linux"):
        assert "invalid ELF header" in error
    missing = load_error(tmp_path / "absent.so")
    assert missing is not None and "absent.so" in missing


def test_load_error_is_none_for_a_library_that_loads():
    name = ctypes.util.find_library("m") or ctypes.util.find_library("c")
    if name is None:
        pytest.skip("no C math or C library found to load")
    assert load_error(name) is None


def _gpu_wheel() -> Path:
    """The pinned onnxruntime-gpu manylinux wheel (downloaded once into data/wheels)."""
    from au_retarget_addon.packaging import PLATFORMS, fetch_wheels

    if not sys.platform.startswith("linux"):
        pytest.skip("the manylinux onnxruntime-gpu wheel loads on Linux only")
    if _cuda13_present():
        pytest.skip("CUDA 13 is installed here: the provider library would load")
    wheels = fetch_wheels(PLATFORMS["linux-x64"], "gpu", REPO / "data" / "wheels")
    return next(w for w in wheels if w.name.startswith("onnxruntime_gpu-"))


@pytest.mark.slow
def test_real_cuda_provider_library_reports_the_missing_cuda(tmp_path):
    member = "onnxruntime/capi/libonnxruntime_providers_cuda.so"
    with zipfile.ZipFile(_gpu_wheel()) as whl:
        library = Path(whl.extract(member, tmp_path))
    error = load_error(library)
    assert error is not None
    assert "libcublasLt.so.13: cannot open shared object file" in error


GPU_WHEEL_RUN = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
import numpy as np
from au_retarget_addon.core.bundle import BundleError, ModelBundle
from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from au_retarget_addon.resources import DEFAULT_BUNDLE
import onnxruntime as ort
assert ort.get_device() == "GPU", ort.__file__
for _ in range(2):
    detector = FaceDetector(DEFAULT_MODEL_DIR)
    detector.detect(np.zeros((120, 160, 3), np.uint8))
    bundle = ModelBundle(DEFAULT_BUNDLE)
print("providers", detector.pnet.get_providers(), bundle.session.get_providers())
try:
    ModelBundle(DEFAULT_BUNDLE, device="cuda")
except BundleError as exc:
    print("refused:", exc)
"""


@pytest.mark.slow
def test_gpu_wheel_without_cuda_tracks_on_the_cpu_in_silence(tmp_path):
    """onnxruntime-gpu without CUDA: sessions on the CPU, one log line, nothing on stderr."""
    _need_mtcnn()
    site = tmp_path / "site"
    with zipfile.ZipFile(_gpu_wheel()) as whl:
        whl.extractall(site)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    res = subprocess.run(
        [sys.executable, "-c", GPU_WHEEL_RUN],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    lines = res.stdout.splitlines()
    assert (
        lines.count(
            "onnxruntime runs on the CPU; CUDA skipped: libcublasLt.so.13: cannot open shared "
            "object file: No such file or directory"
        )
        == 1
    ), res.stdout
    assert "providers ['CPUExecutionProvider'] ['CPUExecutionProvider']" in lines
    refused = next(line for line in lines if line.startswith("refused:"))
    assert "the CUDA execution provider cannot load: libcublasLt.so.13" in refused
    assert refused.endswith("install CUDA 13 and cuDNN 9 or choose CPU")
