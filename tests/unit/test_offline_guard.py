"""The offline guard of tests/unit/conftest.py refuses the network beyond this machine, not loopback."""

from __future__ import annotations

import socket

import pytest


def test_the_network_beyond_loopback_is_refused_and_loopback_is_not(_offline):
    with pytest.raises(OSError, match="unit tests run offline: connect to"):
        socket.socket().connect(("192.0.2.1", 80))  # TEST-NET-1: never answers anyway
    with pytest.raises(OSError, match="name lookup of 'example.com'"):
        socket.create_connection(("example.com", 443), timeout=1)
    assert len(_offline) == 2
    _offline.clear()  # the refusals above were the point of this test

    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
    assert socket.getaddrinfo("localhost", 80)
