"""Unit tests run offline: a connection or name lookup beyond this machine fails the test with a
clear message. Loopback stays allowed (TestClient, local fake servers); local Unix sockets too."""

from __future__ import annotations

import ipaddress
import socket

import pytest

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local_host(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).split("%", 1)[0]  # IPv6 scope id
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name other than localhost: resolving it already reaches the network
    return address.is_loopback or address.is_unspecified


def _is_local_address(address) -> bool:
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX path
    return _is_local_host(address[0])


class NetworkBlocked(OSError):
    """An OSError so the code under test takes its ordinary 'offline' path; the test fails anyway."""


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    reached: list[str] = []

    def refuse(what: str):
        reached.append(what)
        raise NetworkBlocked(f"unit tests run offline: {what} refused (tests/unit/conftest.py); "
                             "use a fake or a loopback server, or move the test to tests/integration")

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_sendto, real_getaddrinfo = socket.socket.sendto, socket.getaddrinfo

    def connect(self, address):
        if not _is_local_address(address):
            refuse(f"connect to {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not _is_local_address(address):
            refuse(f"connect to {address!r}")
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        address = args[-1]
        if not _is_local_address(address):
            refuse(f"sendto {address!r}")
        return real_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local_host(host):
            refuse(f"name lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield reached
    # Also when the code under test swallowed the error (e.g. turned it into a 'source down' result).
    if reached:
        pytest.fail("unit test reached the network: " + "; ".join(reached), pytrace=False)
