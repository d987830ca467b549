"""The docs stay true: every example script runs, and every `>>>` block in the Markdown pages passes."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))
PAGES = sorted(DOCS.rglob("*.md"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(example: Path, tmp_path: Path) -> None:
    """Each docs/examples/*.py script runs to completion as a user would run it."""
    if example.name.startswith("testing_") and example.name.endswith("_test.py"):
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(example)]
    else:
        command = [sys.executable, str(example)]
    env = {
        **os.environ,
        "RELIABLE_STORE": "memory://",
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
    }

    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_doctests(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `>>>` example in a Markdown page gives the output it shows."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELIABLE_STORE", "memory://")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    failed, _attempted = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )

    assert 0 == failed
