"""The package is what it says it is: exported names, version, typing marker, no driver imports."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import reliable


def test_all_is_sorted_and_complete() -> None:
    """`__all__` lists exactly the public names of the package, sorted (httpx test_exported_members)."""
    public = {name for name in dir(reliable) if not name.startswith("_")} | {"__version__"}
    modules = {name for name in public if type(getattr(reliable, name)).__name__ == "module"}

    assert sorted(reliable.__all__) == reliable.__all__
    assert sorted(public - modules) == sorted(set(reliable.__all__) - modules)


def test_version_matches_metadata() -> None:
    """`reliable.__version__` is the installed distribution's version (stamina)."""
    assert importlib.metadata.version("reliable") == reliable.__version__


def test_py_typed_is_shipped() -> None:
    """The package ships `py.typed`, so type checkers use its annotations."""
    assert (Path(reliable.__file__).parent / "py.typed").is_file()


def test_import_does_not_import_drivers() -> None:
    """Importing reliable (and reliable.stores) never imports redis or psycopg."""
    code = "import sys, reliable, reliable.stores; print(sorted(m for m in ('redis', 'psycopg') if m in sys.modules))"

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert "[]" == out.strip()
