"""onnxruntime execution providers: CUDA only where it can really run, else the CPU.

onnxruntime-gpu lists CUDAExecutionProvider whenever its provider library ships, even on a
machine without CUDA or cuDNN; a session asked for CUDA there logs load errors to stderr
and falls back to the CPU. `cuda_check` instead loads that library itself, once per
process, the way onnxruntime would (it fails exactly when a CUDA library it links to is
missing), then cuDNN, which onnxruntime opens by name at run time. `execution_providers`
asks for CUDA only when both load, and says once (logging.info) which provider runs.

The onnxruntime-gpu 1.31.1 wheel needs CUDA 13 (libcudart.so.13, libcublas.so.13,
libcublasLt.so.13, libcurand.so.10 and the driver's libcuda.so.1) and cuDNN 9
(libcudnn.so.9); on Windows their DLLs must be on PATH.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
# LoadLibraryExW flag onnxruntime uses on Windows: the DLL's own folder, then PATH.
_ALTERED_SEARCH_PATH = 0x00000008
_said: set[str] = set()


class ProviderError(RuntimeError):
    """CUDA was asked for where it cannot run (the message says why and what to install)."""


@dataclass(frozen=True)
class CudaCheck:
    """Whether onnxruntime's CUDA provider can run in this process, and if not, why."""

    usable: bool
    reason: str = ""  # empty when usable
    advice: str = ""  # what would make it usable


def _library_names() -> tuple[str, str, str] | None:
    """(provider helper, CUDA provider, cuDNN) file names on this platform; None without CUDA."""
    if sys.platform.startswith("linux"):
        major = _cudnn_major()
        shared, cuda = "libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"
        return shared, cuda, f"libcudnn.so.{major}"
    if sys.platform == "win32":
        major = _cudnn_major()
        shared, cuda = "onnxruntime_providers_shared.dll", "onnxruntime_providers_cuda.dll"
        return shared, cuda, f"cudnn64_{major}.dll"
    return None


def _cuda_major() -> str:
    """The CUDA major version this onnxruntime build links to ('' when it does not say)."""
    try:
        from onnxruntime.capi import build_and_package_info as info
    except ImportError:
        return ""
    return str(getattr(info, "cuda_version", "")).split(".")[0]


def _cudnn_major() -> str:
    """The cuDNN major version onnxruntime-gpu asks for in its package metadata (else 9)."""
    from importlib import metadata

    try:
        requires = metadata.requires("onnxruntime-gpu") or []
    except metadata.PackageNotFoundError:
        requires = []
    for req in requires:
        found = re.match(r"nvidia-cudnn-cu\d+\s*[~=>]=\s*(\d+)", req)
        if found:
            return found.group(1)
    return "9"


def load_error(library: str | Path) -> str | None:
    """None when the shared library loads into this process, else the loader's message.

    A path loads with its own folder searched for its dependencies (as onnxruntime does);
    a bare name is found the system's way (LD_LIBRARY_PATH and ld.so.cache, or PATH)."""
    winmode: int | None = None
    if sys.platform == "win32":
        winmode = _ALTERED_SEARCH_PATH if os.path.isabs(library) else 0
    try:
        ctypes.CDLL(str(library), winmode=winmode)
    except OSError as exc:
        return str(exc) or f"{library} cannot be loaded"
    return None


def _already_loaded(library: Path) -> bool:
    """Whether `library` is loaded in this process already (without loading it)."""
    if sys.platform == "win32":
        return bool(ctypes.WinDLL("kernel32").GetModuleHandleW(str(library)))
    try:
        ctypes.CDLL(str(library), mode=os.RTLD_NOLOAD | ctypes.RTLD_GLOBAL)
    except (OSError, AttributeError):
        return False
    return True


def _advice() -> str:
    """What to install for this onnxruntime build's CUDA provider."""
    major = _cuda_major()
    cuda = f"CUDA {major}" if major else "CUDA"
    return f"install {cuda} and cuDNN {_cudnn_major()} or choose CPU"


@functools.cache
def cuda_check() -> CudaCheck:
    """Whether CUDA can run here: listed by onnxruntime, its provider library loads and
    cuDNN loads. Probed once per process; the reason names the file that failed."""
    import onnxruntime as ort

    if CUDA not in ort.get_available_providers():
        return CudaCheck(
            False,
            f"this onnxruntime ({ort.__version__}) is built without CUDA",
            "use onnxruntime-gpu (the add-on's -cuda build) or choose CPU",
        )
    names = _library_names()
    if names is None:
        return CudaCheck(False, f"onnxruntime has no CUDA provider on {sys.platform}", "choose CPU")
    capi = Path(ort.__file__).resolve().parent / "capi"
    shared, cuda, cudnn = (capi / names[0], capi / names[1], names[2])
    if not cuda.is_file():
        return CudaCheck(False, f"{cuda} is missing", "reinstall onnxruntime-gpu or choose CPU")
    # The provider's initialisers call into the helper library that `import onnxruntime`
    # loads and connects; loading the provider without it would crash the process.
    if not _already_loaded(shared):
        return CudaCheck(False, f"onnxruntime has not loaded {shared}", "choose CPU")
    for library in (cuda, cudnn):
        error = load_error(library)
        if error is not None:
            return CudaCheck(False, error, _advice())
    return CudaCheck(True)


def _say_once(message: str) -> None:
    """log.info the message the first time this process says it."""
    if message not in _said:
        _said.add(message)
        log.info(message)


def execution_providers(prefer: str = "auto") -> list[str]:
    """Providers for an onnxruntime session: `prefer` is auto (CUDA when it can run, else
    the CPU), cpu, or cuda (a ProviderError saying why when CUDA cannot run)."""
    if prefer not in DEVICES:
        raise ProviderError(f"unknown execution provider {prefer!r}: choose one of {DEVICES}")
    if prefer == "cpu":
        _say_once("onnxruntime runs on the CPU (chosen)")
        return [CPU]
    check = cuda_check()
    if check.usable:
        _say_once("onnxruntime runs on CUDA")
        return [CUDA, CPU]
    if prefer == "cuda":
        raise ProviderError(
            f"the CUDA execution provider cannot load: {check.reason}; {check.advice}"
        )
    _say_once(f"onnxruntime runs on the CPU; CUDA skipped: {check.reason}")
    return [CPU]


def checked(requested: Sequence[str]) -> list[str]:
    """An explicit provider list, refused with a ProviderError when it names CUDA and CUDA
    cannot run here (onnxruntime would fall back to the CPU with errors on stderr)."""
    if CUDA in requested:
        execution_providers("cuda")
    return list(requested)
