"""The main job (`recxplore run` with no arguments) on a fresh set-up, then again from its cache.

Prints the comparison table each run prints, then the first run's and the rerun's wall times
and their ratios to the targets: a first run within 12 minutes on a 2-core machine, a rerun from
the cache within 30 seconds. Each run's progress log is written beside the
home.

Usage: python bench/main_job.py [--home DIR]
The home is a new temporary folder unless --home is given (then it must be empty, or the first
run is not a first run). Each run is a separate `python -m recxplore run` process, as a user
would type it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"first run": 12 * 60.0, "rerun": 30.0}


def timed_run(home: Path, log: Path) -> float:
    started = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.run(
            [sys.executable, "-m", "recxplore", "run"],
            stderr=err,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "RECXPLORE_HOME": str(home)},
        )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"recxplore run failed (exit {proc.returncode}); its log is {log}")
    print(proc.stdout)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="an empty folder to use as RECXPLORE_HOME")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="recxplore-main-job-"))
    home.mkdir(parents=True, exist_ok=True)
    if any(home.iterdir()):
        sys.exit(f"{home} is not empty: a first run needs a fresh home")
    print(f"home: {home}")
    seconds = {}
    for label in TARGETS:
        log = home.parent / f"{home.name}-{label.replace(' ', '-')}.log"
        seconds[label] = timed_run(home, log)
    print(f"{'run':<10} {'seconds':>8} {'target':>7} {'ratio':>6}")
    for label, target in TARGETS.items():
        print(f"{label:<10} {seconds[label]:8.0f} {target:7.0f} {seconds[label] / target:6.2f}")


if __name__ == "__main__":
    main()
