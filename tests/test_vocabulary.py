"""The project speaks of the software, never of how it was worked on.

User-facing files (README, BENCHMARKS.md, docs, configs, model cards) and the comments and
docstrings of the code carry no numbered working periods, no tracker numbers given as
reasons and no "tried then dropped" stories; the dated experiment record in
docs/experiments.md words its entries by date and config.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the words a development diary uses: "session 12", "issue 7", "#14", "stop 3",
# "attempt 2", "Tried in ..."
DIARY = re.compile(
    r"\b[Ss]ession \d+"
    r"|\b[Ii]ssues? #?\d+"
    r"|\b[Ss]tops? \d+\b"
    r"|\b[Aa]ttempts? #?\d+"
    r"|\bTried in\b"
    r"|(?<![\w&/])#\d+\b"
)


def _text_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "blender_manifest.toml"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    files += sorted((ROOT / "ml" / "configs").rglob("*.toml"))
    files += sorted((ROOT / "au_retarget_addon").rglob("model_card.json"))
    files += sorted((ROOT / "rigs").rglob("*.md"))
    return [f for f in files if f.is_file()]


def _python_files() -> list[Path]:
    files: list[Path] = []
    for top in ("ml", "au_retarget_addon", "rigs"):
        files += sorted((ROOT / top).rglob("*.py"))
    return files


def _comments_and_docstrings(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and string token in a Python source: docstrings are
    strings, and a diary line inside a message string is as visible to users."""
    out: list[tuple[int, str]] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            out.append((tok.start[0], tok.string))
    return out


def diary_lines(path: Path) -> list[str]:
    """Every `path:line: match` where a file speaks of the project's own development."""
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    hits: list[str] = []
    if path.suffix == ".py":
        for line, chunk in _comments_and_docstrings(text):
            for m in DIARY.finditer(chunk):
                hits.append(f"{rel}:{line + chunk[: m.start()].count(chr(10))}: {m.group(0)!r}")
    else:
        for n, line in enumerate(text.splitlines(), 1):
            for m in DIARY.finditer(line):
                hits.append(f"{rel}:{n}: {m.group(0)!r}")
    return hits


def test_the_checked_files_exist():
    names = {f.name for f in _text_files()}
    assert {"README.md", "BENCHMARKS.md", "architecture.md", "experiments.md"} <= names
    assert any(f.name == "model_card.json" for f in _text_files())
    assert len(_python_files()) > 50


def test_user_facing_files_carry_no_development_diary():
    hits = [h for f in _text_files() for h in diary_lines(f)]
    assert not hits, "development-diary wording in user-facing files:\n" + "\n".join(hits)


def test_code_comments_and_docstrings_carry_no_development_diary():
    hits = [h for f in _python_files() for h in diary_lines(f)]
    assert not hits, "development-diary wording in comments or docstrings:\n" + "\n".join(hits)


@pytest.mark.parametrize(
    "text",
    [
        "# a flag from session 12\n",
        "Tried in the spring and not shipped.\n",
        "the warm-up (issue 7's flag)\n",
        "see #14 for why\n",
        "stop 3 measured it\n",
        "attempt 2 was better\n",
    ],
)
def test_the_check_catches_diary_wording(tmp_path, text):
    doc = tmp_path / "notes.md"
    doc.write_text(text, encoding="utf-8")
    assert diary_lines(doc)
    code = tmp_path / "mod.py"
    code.write_text(f'"""{text.strip()}"""\nX = 1  # {text.strip()}\n', encoding="utf-8")
    assert len(diary_lines(code)) == 2


@pytest.mark.parametrize(
    "text",
    [
        "measured 2026-12-03 on 2 cores\n",
        "colour #ff8800 and an HTML entity &#39; in a string\n",
        "a session with the add-on open\n",
        "file an issue with the log\n",
    ],
)
def test_the_check_passes_plain_wording(tmp_path, text):
    doc = tmp_path / "notes.md"
    doc.write_text(text, encoding="utf-8")
    assert not diary_lines(doc)
