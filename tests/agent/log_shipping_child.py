"""Ships one instance's logs until killed: the agent whose crash the shipper test simulates.

Usage: python log_shipping_child.py STATE_DIR RUNTIME_DIR LABELS_JSON
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from immute.agent.log_shipper import LogShipper
from immute.core.instances import InstanceLabels
from immute.runtimes.process import ProcessRuntime


async def main(state_dir: Path, runtime_dir: Path, labels: InstanceLabels) -> None:
    # Small batches and a short poll: many transactions for the kill to land in.
    async with LogShipper(
        ProcessRuntime(runtime_dir), state_dir, interval=0.01, batch_lines=25
    ) as shipper:
        await shipper.ship(labels)


if __name__ == "__main__":
    state, runtime, raw = sys.argv[1:4]
    asyncio.run(main(Path(state), Path(runtime), InstanceLabels(**json.loads(raw))))
