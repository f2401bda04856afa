"""A process that races for the deploy lock through the store API (run by the tests).

    python lock_racer.py STATE_DIR APP MESSAGE

Opens the store, prints "ready", waits for one line on stdin (so several racers
start at the same instant), then tries to take the lock for its own pid and
prints "won" or "lost: <error>". A winner holds the lock until its stdin gives
another line or closes (or it is killed).
"""

from __future__ import annotations

import sys
from pathlib import Path

from immute.errors import LockHeldError
from immute.store import Store


def main(argv: list[str]) -> int:
    state_dir, app, message = Path(argv[0]), argv[1], argv[2]
    print("ready", flush=True)
    sys.stdin.readline()
    # Opened only after "go", so that racers on a fresh directory also race to
    # create the database and migrate it.
    with Store.open(state_dir) as store:
        try:
            with store.locks.hold(app, message=message):
                print("won", flush=True)
                sys.stdin.readline()
        except LockHeldError as exc:
            print(f"lost: {exc}", flush=True)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
