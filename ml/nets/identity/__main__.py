"""`python -m ml.nets.identity fetch [--out DIR] [--tarball TGZ]`: the offline identity weights."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ml.errors import exit_on_error
from ml.nets.identity.faceapi_resnet import DEFAULT_OUT, fetch


def _fetch(out: Path, tarball: Path | None) -> int:
    print(f"identity network weights: {fetch(out, tarball)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ml.nets.identity", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="npm-pack @vladmandic/face-api and convert its ResNet")
    f.add_argument("--out", type=Path, default=DEFAULT_OUT)
    f.add_argument("--tarball", type=Path, default=None, help="use this npm tarball, no download")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return exit_on_error("python -m ml.nets.identity", _fetch, args.out, args.tarball)


if __name__ == "__main__":
    sys.exit(main())
