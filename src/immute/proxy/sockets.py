"""Listening sockets: TCP listeners, owner-only unix sockets, and their handover.

A new router process takes the listening sockets of the running one over a unix
socket (SCM_RIGHTS), so the kernel's accept queue never closes: no connection is
refused while the old process finishes its in-flight requests.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from immute.errors import RouterError

_LENGTH = struct.Struct("!I")
TAKEOVER = b"TAKEOVER\n"
DONE = b"OK\n"


def tcp_listener(address: tuple[str, int], *, backlog: int = 1024) -> socket.socket:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise RouterError(f"cannot listen on {address[0]}:{address[1]}: {exc.strerror}") from exc
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def resolved(address: tuple[str, int], family: int = 0) -> set[tuple[object, ...]]:
    """The (host, port) socket addresses that HOST:PORT names (`localhost` and
    `127.0.0.1` name one); none when it does not resolve."""
    try:
        infos = socket.getaddrinfo(*address, family, socket.SOCK_STREAM)
    except socket.gaierror:
        return set()
    return {tuple(info[4][:2]) for info in infos}


def listener_at(inherited: socket.socket, address: tuple[str, int]) -> socket.socket:
    """`inherited` if it already listens on `address`, else a new listener there
    (the inherited one is closed here; the old process closes its own when the
    handover completes)."""
    if tuple(inherited.getsockname()[:2]) in resolved(address, inherited.family):
        return inherited
    fresh = tcp_listener(address)
    inherited.close()
    return fresh


def unix_listener(path: Path) -> socket.socket:
    """Bind with mode 0600 under a temporary name, then rename over `path` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(tmp))
    finally:
        os.umask(old_umask)
    os.chmod(tmp, 0o600)
    sock.listen(64)
    os.replace(tmp, path)
    sock.setblocking(False)
    return sock


@dataclass
class Inherited:
    listeners: list[socket.socket]
    state: dict[str, object]


def send_listeners(conn: socket.socket, listeners: list[socket.socket], state: object) -> None:
    payload = json.dumps(state).encode()
    fds = [s.fileno() for s in listeners]
    socket.send_fds(conn, [_LENGTH.pack(len(payload))], fds)
    conn.sendall(payload)


def request_takeover(
    path: Path, *, timeout: float = 10.0
) -> tuple[socket.socket, Inherited] | None:
    """Ask the router serving `path` for its sockets; None when no router answers."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        conn.close()
        return None
    conn.sendall(TAKEOVER)
    head, fds, _, _ = socket.recv_fds(conn, _LENGTH.size, 8)
    if len(head) != _LENGTH.size:
        conn.close()
        raise RouterError(f"{path}: the running router refused the handover")
    (length,) = _LENGTH.unpack(head)
    payload = b""
    while len(payload) < length:
        more = conn.recv(length - len(payload))
        if not more:
            raise RouterError(f"{path}: handover cut short")
        payload += more
    listeners = [socket.socket(fileno=fd) for fd in fds]
    for sock in listeners:
        sock.setblocking(False)
    state = json.loads(payload)
    return conn, Inherited(listeners, state)
