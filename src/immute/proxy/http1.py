"""HTTP/1.1 message heads: collecting, hop-by-hop filtering, canned responses.

Headers are sorted once, as the parser reports them: lines to forward go into
a list of ready-made `name: value` lines, and the few headers the proxy acts on
go into a small dict (`Special`). Building the forwarded head is then a join.
"""

from __future__ import annotations

from http import HTTPStatus

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})
# The proxy writes these itself; whatever a peer sent under these names is dropped.
REQUEST_REWRITTEN = frozenset(
    {b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-for", b"x-request-id"}
)
REQUEST_WATCHED = HOP_BY_HOP | REQUEST_REWRITTEN | {b"host", b"content-length", b"cookie"}
RESPONSE_WATCHED = HOP_BY_HOP | {b"content-length", b"x-request-id"}
DROPPED = HOP_BY_HOP | REQUEST_REWRITTEN
_CONNECTION_OPTIONS = frozenset({b"close", b"keep-alive", b"upgrade", b""})


# Connection values that name no other header (None: no Connection header at all).
SIMPLE_CONNECTION = frozenset({None, b"close", b"keep-alive", b"upgrade", b"Keep-Alive", b"Close"})
Special = dict[bytes, bytes]


def record(special: Special, lower: bytes, value: bytes) -> None:
    """Keep a header the proxy acts on; repeated ones join as the RFC allows."""
    previous = special.get(lower)
    if previous is None:
        special[lower] = value
    else:
        special[lower] = previous + (b"; " if lower == b"cookie" else b", ") + value


def forwarded(lines: list[bytes], special: Special) -> list[bytes]:
    """The end-to-end lines, without headers that `Connection` names as hop-by-hop."""
    connection = special.get(b"connection")
    if connection is None or connection in SIMPLE_CONNECTION:
        return lines
    tokens = {t.strip().lower() for t in connection.split(b",")} - _CONNECTION_OPTIONS
    if not tokens:
        return lines
    return [line for line in lines if line.split(b":", 1)[0].lower() not in tokens]


def simple_response(
    status: int, body: str = "", *, close: bool = True, extra: list[bytes] | None = None
) -> bytes:
    """A complete small response the proxy answers by itself (errors, holds)."""
    payload = (body or HTTPStatus(status).phrase).encode() + b"\n"
    lines = [
        b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode()),
        b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\n" % len(payload),
        *(extra or []),
        b"connection: close\r\n\r\n" if close else b"\r\n",
    ]
    return b"".join(lines) + payload


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
