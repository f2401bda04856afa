"""``python -m immute.agent --state-dir DIR``: run the agent in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from immute.agent.api import handle
from immute.agent.daemon import SOCKET_NAME, Agent, single_agent
from immute.agent.log_shipper import LogShipper
from immute.errors import ImmuteError
from immute.proxy.control_http import ControlRequest, ControlResponse, start_control_server
from immute.proxy.sockets import unix_listener


async def run(state_dir: Path) -> None:
    agent = Agent(state_dir)
    # Bound at once, answered only after recovery: a client that connects early
    # waits, and never sees the state before an interrupted deploy is resumed.
    sock = unix_listener(state_dir / SOCKET_NAME)
    async with LogShipper(agent.runtime, state_dir) as shipper:
        agent.logs.follow = shipper.follow
        agent.logs.flush = shipper.flush
        await agent.recover()

        async def handler(request: ControlRequest) -> ControlResponse:
            return await handle(agent, request)

        server = await start_control_server(handler, sock=sock)
        await serve(agent, state_dir, server)


async def serve(agent: Agent, state_dir: Path, server: asyncio.Server) -> None:
    print(f"immute agent serving {state_dir / SOCKET_NAME}", flush=True)
    supervisor = asyncio.create_task(agent.supervise())
    try:
        await agent.stopping.wait()
    finally:
        server.close()
        supervisor.cancel()
        if agent.deploy_task is not None and not agent.deploy_task.done():
            # Leave an interrupted deploy journaled: the next agent resumes it.
            agent.deploy_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        (state_dir / SOCKET_NAME).unlink(missing_ok=True)
        agent.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="immute agent")
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args()
    state_dir: Path = args.state_dir.resolve()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        with single_agent(state_dir):
            asyncio.run(run(state_dir))
    except ImmuteError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
