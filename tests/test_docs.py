"""Executable documentation: the README's commands and Python blocks, the examples, the demo."""

from __future__ import annotations

import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pinnersage.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.S)]


def test_readme_starts_with_the_two_commands() -> None:
    _lang, first = fenced_blocks(README)[0]
    lines = [line for line in first.splitlines() if line.strip()]
    assert len(lines) == 2, "the first block holds exactly two commands"
    assert "pinnersage demo" in lines[0], "the main job comes first"
    ci = (ROOT / ".ci" / "run").read_text()
    assert lines[1] in ci, ".ci/run calls README's test command"


@pytest.mark.parametrize("block", [b for lang, b in fenced_blocks(README) if lang == "python"])
def test_readme_python_blocks_run(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip()


def test_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    for path in sorted((ROOT / "examples").glob("*.py")):
        runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "candidates, from interests" in out


def _readme_command_lines() -> list[list[str]]:
    """The ``pinnersage ...`` lines of README's shell blocks, ``$LOG`` expanded."""
    lines: list[list[str]] = []
    for lang, block in fenced_blocks(README):
        if lang:
            continue
        log = re.search(r"^LOG=(\S+)$", block, re.M)
        for line in block.splitlines():
            if line.startswith("pinnersage "):
                text = line.replace("$LOG", log.group(1)) if log else line
                lines.append(shlex.split(text.split("  #")[0])[1:])
    return lines


def test_readme_command_lines_parse() -> None:
    """Every command line the README shows is one the parser accepts (flags cannot rot)."""
    lines = _readme_command_lines()
    assert {argv[0] for argv in lines} >= {"embed", "index", "batch", "inspect", "evaluate"}
    parser = build_parser()
    for argv in lines:
        parser.parse_args(argv)


@pytest.mark.slow
def test_readme_command_line_quickstart_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command-line quickstart, on the shipped log, from the clone's root (its paths); its
    outputs go to a temporary folder. ``evaluate`` (a minute and a half) is left to the
    evaluation's own tests."""
    monkeypatch.chdir(ROOT)
    for argv in _readme_command_lines():
        if argv[0] in ("embed", "index", "batch", "inspect"):
            argv = [a.replace("out/", f"{tmp_path}/") for a in argv]
            assert main([*argv, "--quiet"]) == 0, argv
    out = capsys.readouterr().out
    assert "wrote hnsw index" in out and "CURRENT" in out
    assert "user 14815:" in out and "more (--top 0 prints all)" in out


#: Words of the development process that the product's docs must not speak.
PROCESS_WORDS = re.compile(r"\bissues? ?#?\d|\(issue|\bgoals?\b|\bhonestly\b|\bdiary\b", re.I)
USER_DOCS = [
    "README.md",
    "CHANGELOG.md",
    *(f"docs/{n}.md" for n in ("paper-map", "results", "batch", "benchmarks")),
]


@pytest.mark.parametrize("name", USER_DOCS)
def test_docs_speak_to_users(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    assert not PROCESS_WORDS.search(text), PROCESS_WORDS.search(text)
    if name != "README.md":  # README's development notes name where the raw public logs live
        assert "../shared" not in text, "link a public source instead"


def test_cli_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pinnersage", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("demo", "embed", "index", "batch", "inspect", "evaluate"):
        assert command in done.stdout


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "demo"), "--users", "2"]) == 0
    out = capsys.readouterr().out
    assert "[4/4]" in out and "interests from" in out and "recommended" in out
    assert (tmp_path / "demo" / "snapshots" / "CURRENT").exists()
    assert (tmp_path / "demo" / "items.parquet").exists()
    # titles of medoid products are shown (Online Retail descriptions are upper case)
    assert re.search(r"\b[A-Z]{3,} [A-Z]{3,}", out)


def test_demo_bad_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--actions", str(tmp_path / "missing.parquet")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_test_command_needs_nothing_beside_the_clone() -> None:
    """README's second command passes on a machine with only the clone: a test that reads the
    public logs beside it is marked ``shared_data``, which scripts/test.sh deselects, saying so,
    where they are absent (a skip would fail there: PINNERSAGE_NO_SKIP=1)."""
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert '-m "not shared_data"' in script and "PINNERSAGE_NO_SKIP=1" in script
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        if path.name == Path(__file__).name:  # this file names the folder in its checks
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"""["']shared["']|\.\./shared""", text):
            assert "pytest.mark.shared_data" in text, path.name
