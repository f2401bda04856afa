"""HTTP/1.1 message heads: hop-by-hop filtering, rewriting, canned error responses."""

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
# Our own forwarding headers replace whatever the client sent under these names.
REPLACED_BY_PROXY = frozenset({b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-for"})

Headers = list[tuple[bytes, bytes]]


def connection_tokens(headers: Headers) -> frozenset[bytes]:
    """Header names listed in `Connection`, which are hop-by-hop for this message."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens)


def end_to_end(headers: Headers, drop: frozenset[bytes]) -> list[bytes]:
    """`name: value` lines of the headers that a proxy forwards."""
    lines = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in drop:
            continue
        lines.append(name + b": " + value + b"\r\n")
    return lines


def header_value(headers: Headers, wanted: bytes) -> bytes | None:
    for name, value in headers:
        if name.lower() == wanted:
            return value
    return None


def simple_response(
    status: int, body: str = "", *, close: bool = True, extra: Headers | None = None
) -> bytes:
    """A complete small response the proxy answers by itself (errors, holds)."""
    payload = (body or HTTPStatus(status).phrase).encode() + b"\n"
    lines = [
        b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode()),
        b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\n" % len(payload),
    ]
    lines.extend(name + b": " + value + b"\r\n" for name, value in extra or [])
    lines.append(b"connection: close\r\n\r\n" if close else b"\r\n")
    return b"".join(lines) + payload


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
