"""Request bodies are bounded before they are read; WebSocket messages are bounded too.

The raw-socket tests announce or stream more than the limit and never finish the body: a
server that waited for the whole body before refusing it would not answer at all.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
from sandbox_helpers import API_TOKEN, Sandbox, assert_error
from websockets.exceptions import ConnectionClosed

from sample_app.sandbox.httputil import MAX_REQUEST_BODY_BYTES
from sample_app.sandbox.server import WS_MAX_MESSAGE_BYTES

LIMIT = MAX_REQUEST_BODY_BYTES


def test_the_limit_is_64_kib() -> None:
    assert LIMIT == 64 * 1024


def raw_request(sandbox: Sandbox, head: str, chunks: list[bytes], timeout: float = 3.0) -> bytes:
    """Send a request head and some body bytes on a fresh socket; return what comes back."""
    parts = urlsplit(sandbox.server.http_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed: that is the point
                break
        received = b""
        try:
            while b"\r\n\r\n" not in received or not _has_full_body(received):
                data = sock.recv(65536)
                if not data:
                    break
                received += data
        except (TimeoutError, ConnectionResetError):
            pass
    return received


def _has_full_body(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse_response(received: bytes) -> tuple[int, dict[str, str], dict]:
    """Status, headers and JSON body of a raw HTTP/1.1 response."""
    assert received, "the server did not answer (it waited for the body)"
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, json.loads(body)


def assert_too_large(status: int, headers: dict[str, str], body: dict) -> None:
    assert status == 413
    assert set(body) == {"error", "code", "message"}
    assert body["error"] is True and body["code"] == 400403
    assert "too large" in body["message"]
    assert headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/v3/users", "/__sandbox__/faults", "/v3/group_channels"])
def test_an_announced_oversize_body_is_refused_unread(sandbox: Sandbox, path: str) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: sandbox\r\nApi-Token: {API_TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {100 * LIMIT}\r\n\r\n"
    )
    status, headers, body = parse_response(raw_request(sandbox, head, [b"{"]))
    assert_too_large(status, headers, body)
    assert sandbox.http.get("/__sandbox__/faults").json()["faults"] == []


def test_a_chunked_body_is_cut_off_at_the_limit(sandbox: Sandbox) -> None:
    head = (
        f"POST /v3/users HTTP/1.1\r\nHost: sandbox\r\nApi-Token: {API_TOKEN}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"x" * 8192
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    # Twice the limit, and no terminating zero-length chunk: the body never ends.
    status, headers, body = parse_response(raw_request(sandbox, head, [chunk] * 16))
    assert_too_large(status, headers, body)


def test_httpx_gets_the_sendbird_envelope(sandbox: Sandbox) -> None:
    body = json.dumps({"user_id": "big", "nickname": "x", "profile_url": "", "pad": "x" * LIMIT})
    response = sandbox.http.post(
        "/v3/users", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, 400403)
    assert sandbox.http.get("/v3/users/big").json()["code"] == 400201


def test_a_body_under_the_limit_is_served(sandbox: Sandbox) -> None:
    pad = "x" * (LIMIT - 200)
    response = sandbox.http.post(
        "/v3/users", json={"user_id": "fits", "nickname": "x", "profile_url": "", "pad": pad}
    )
    assert response.status_code == 200, response.text


def test_a_malformed_content_length_is_refused(sandbox: Sandbox) -> None:
    head = (
        f"POST /v3/users HTTP/1.1\r\nHost: sandbox\r\nApi-Token: {API_TOKEN}\r\n"
        "Content-Length: -5\r\n\r\n"
    )
    received = raw_request(sandbox, head, [])
    assert received.startswith(b"HTTP/1.1 400"), received[:80]


async def test_a_websocket_message_over_the_hard_cap_closes_with_1009(sandbox: Sandbox) -> None:
    client = await sandbox.login()
    async with client:
        await client.send_raw("PING" + "x" * (WS_MAX_MESSAGE_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv(3)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_a_compressed_websocket_bomb_is_bounded_too(sandbox: Sandbox) -> None:
    """permessage-deflate: a few KiB on the wire that inflate past the cap are refused."""
    client = await sandbox.login()
    async with client:
        assert client.ws.protocol.extensions, "the client negotiated no compression"
        await client.send_raw("PING" + "0" * (4 * WS_MAX_MESSAGE_BYTES))
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv(3)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
