"""How fast the CLI starts: `immute --version` and `immute --help`.

Run: .venv/bin/python bench/cli_startup.py [--runs N]

Prints the median and best wall time of each command over N runs, next to a bare
`python -c pass` measured in the same run, so the figure can be read against the
interpreter's own start on this (noisy) machine. Target: under 0.15 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

TARGET_S = 0.15


def time_command(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    immute = shutil.which("immute") or str(
        __import__("pathlib").Path(sys.executable).with_name("immute")
    )
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "immute --version": [immute, "--version"],
        "immute --help": [immute, "--help"],
    }
    print(f"{'command':<20} {'median s':>9} {'best s':>8}  target")
    for name, argv in cases.items():
        times = time_command(argv, args.runs)
        median = statistics.median(times)
        verdict = "" if name.startswith("python") else ("ok" if median < TARGET_S else "SLOW")
        print(f"{name:<20} {median:>9.3f} {min(times):>8.3f}  {verdict}")


if __name__ == "__main__":
    main()
