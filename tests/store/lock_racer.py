"""A process that races for the deploy lock through the store API (run by the tests).

    python lock_racer.py STATE_DIR APP MESSAGE [--hold]

Opens the store, prints "ready", waits for one line on stdin (so several racers
start at the same instant), then tries to take the lock for its own pid and
prints "won" or "lost: <error>". With --hold, a winner keeps the lock, sleeping
until killed (at most 120 s, so a forgotten racer cannot linger).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from immute.errors import LockHeldError
from immute.store import Store


def main(argv: list[str]) -> int:
    state_dir, app, message = Path(argv[0]), argv[1], argv[2]
    hold = "--hold" in argv[3:]
    with Store.open(state_dir) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        try:
            with store.locks.hold(app, message=message):
                print("won", flush=True)
                if hold:
                    time.sleep(120)
        except LockHeldError as exc:
            print(f"lost: {exc}", flush=True)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
