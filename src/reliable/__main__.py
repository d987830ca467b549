"""``python -m reliable``: the same as the ``reliable`` command."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
