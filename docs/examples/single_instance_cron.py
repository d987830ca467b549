"""A cron job that must never overlap itself: a second start while the first runs is skipped.

Run it as cron would; here the script starts a second copy of itself while the first holds
the lock, and the second copy exits at once with "skipped".
"""

from __future__ import annotations

import subprocess
import sys

import reliable


@reliable.single_instance("nightly-report")  # on_conflict="skip" is the default
def nightly_report() -> int:
    """Pretend to write today's report; return the number of rows."""
    if "--second" not in sys.argv:
        # While this run holds the lock, cron starts the job again:
        second = subprocess.run([sys.executable, __file__, "--second"], capture_output=True, text=True, check=True)
        print("second start printed:", second.stdout.strip())
    return 42


def main() -> int:
    rows = nightly_report()
    if rows is reliable.SKIPPED:
        print("skipped: the previous run is still going")
        return 0
    print(f"wrote {rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
