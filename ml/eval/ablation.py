"""The ablation table (paper Table 3): the regressor trained with one loss switched off at a
time, plus the supervised warm-up variants, each at the same budget and evaluated on the
same held-out rendered pairs.

    python -m ml.eval.ablation --config ml/configs/regressor.toml --steps 2000 \
        --eval-pairs data/recipe/pairs_eval --out runs/ablation \
        --set frozen.parser=runs/recipe/parser/last.pt --set frozen.generator=...

Each variant trains in its own folder under --out and resumes after a kill; the table
(markdown, also written to --out/ablation.md and ablation.json) gives average ICC(3,1) and
MAE over the FACS AUs and the head-pose error per variant.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ml.errors import MLError, exit_on_error

FIVE = ("content", "identity", "parameter", "loopback", "adversarial")
VARIANTS: dict[str, dict[str, float]] = {
    "full (five losses)": {},
    **{f"without {k}": {f"loss.{k}": 0.0} for k in FIVE},
    "full + supervised warm-up": {"loss.supervised": 1.0},
    "supervised only": {**{f"loss.{k}": 0.0 for k in FIVE}, "loss.supervised": 1.0},
}


class AblationError(MLError, RuntimeError):
    """A variant failed to train or evaluate (names it and its command)."""


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def _run(cmd: list[str], name: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise AblationError(f"variant {name!r} failed: {res.stderr[-1500:]}\ncommand: {cmd}")


def run_variant(
    name: str, overrides: dict[str, float], args: argparse.Namespace, sets: list[str]
) -> dict:
    """Train (or resume) one variant and evaluate it; returns its eval.json."""
    run = args.out / _slug(name)
    cmd = [sys.executable, "-m", "ml.train.regressor", "--config", str(args.config)]
    extra = [*sets, f"optim.steps={args.steps}", f"run.dir={run}"]
    extra += [f"{k}={v}" for k, v in overrides.items()]
    _run(cmd + [a for s in extra for a in ("--set", s)], name)
    parser = next((s.split("=", 1)[1] for s in sets if s.startswith("frozen.parser=")), None)
    if parser is None:
        raise AblationError("give the frozen parser: --set frozen.parser=PATH")
    ev = [sys.executable, "-m", "ml.eval.regressor", "--regressor", str(run / "last.pt")]
    _run(ev + ["--parser", parser, "--pairs", str(args.eval_pairs)], name)
    return json.loads((run / "eval.json").read_text())


def table(results: dict[str, dict]) -> str:
    rows = [
        "| variant | avg ICC(3,1) | avg MAE | yaw / pitch / roll error (deg) |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        avg, pose = r["aus"]["average"], r["pose_deg"]
        angles = " / ".join(f"{pose[k]:.2f}" for k in ("yaw", "pitch", "roll"))
        rows.append(f"| {name} | {avg['icc']:.3f} | {avg['mae']:.3f} | {angles} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.eval.ablation", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--config", type=Path, default=Path("ml/configs/regressor.toml"))
    ap.add_argument("--steps", type=int, required=True, help="training budget per variant")
    ap.add_argument("--eval-pairs", type=Path, required=True, help="held-out rendered pairs")
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", nargs="+", choices=list(VARIANTS), help="some variants")
    args = ap.parse_args(argv)
    results = {}
    for name, overrides in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        print(f"ablation: {name}", flush=True)
        results[name] = run_variant(name, overrides, args, args.set)
    md = f"Ablation at {args.steps} steps per variant, on {args.eval_pairs}\n\n" + table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ablation.md").write_text(md)
    (args.out / "ablation.json").write_text(json.dumps(results, indent=2))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.eval.ablation", main))
