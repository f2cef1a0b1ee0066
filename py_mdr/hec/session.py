"""A ``requests`` session whose connections obey the current :class:`Deadline`.

Inside ``with Deadline(at):`` every socket the session opens or reuses is attached to it, so
the deadline bounds the name lookup, the connect, TLS, writing the body and reading the whole
answer, not only each single wait. Outside a deadline the connections behave as urllib3's own.
"""

from __future__ import annotations

import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
import urllib3.poolmanager
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import allowed_gai_family

from py_mdr.hec.watchdog import Deadline, current_deadline
from py_mdr.threads import daemon_thread

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection

__all__ = ["NameLookupTimeout", "new_session"]

_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


class NameLookupTimeout(TimeoutError):
    """The host name lookup did not finish before the deadline."""


def new_session(pool_maxsize: int = 2) -> requests.Session:
    """A session whose HTTP and HTTPS connections attach to the thread's current deadline."""
    session = requests.Session()
    adapter = _DeadlineAdapter(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _resolve(host: str, port: int, family: int, deadline: Deadline) -> list[_AddrInfo]:
    """``getaddrinfo`` bounded by the deadline: a stuck resolver cannot hold the send."""
    try:  # an address needs no lookup
        return list(
            socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
        )
    except socket.gaierror:
        pass
    found: list[_AddrInfo] = []
    failed: list[OSError] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
        except OSError as exc:
            failed.append(exc)
        finally:
            done.set()

    try:
        daemon_thread(lookup, "py-mdr-lookup").start()
    except RuntimeError:  # no new threads at interpreter shutdown: look up in this one
        lookup()
    if not done.wait(max(deadline.remaining(), 0.0)):
        raise NameLookupTimeout(f"looking up {host} did not finish before the deadline")
    if failed:
        raise failed[0]
    return found


def _connect(conn: urllib3.connection.HTTPConnection, deadline: Deadline) -> socket.socket:
    """urllib3's ``create_connection``, each step cut to the time left before the deadline."""
    host = conn._dns_host
    if host.startswith("["):
        host = host.strip("[]")
    try:
        host.encode("idna")
    except UnicodeError:
        raise LocationParseError(f"'{host}', label empty or too long") from None
    limit = conn.timeout if isinstance(conn.timeout, (int, float)) else None
    error: OSError | None = None
    for family, kind, proto, _, address in _resolve(
        host, conn.port, allowed_gai_family(), deadline
    ):
        left = deadline.remaining()
        if left <= 0:
            raise TimeoutError("the deadline passed while connecting")
        sock = socket.socket(family, kind, proto)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(left if limit is None else min(limit, left))
            if conn.source_address:
                sock.bind(conn.source_address)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error or OSError("getaddrinfo returned no address")


def _open(conn: urllib3.connection.HTTPConnection) -> socket.socket:
    """A new connection's socket, attached to the current deadline (urllib3's errors kept)."""
    deadline = current_deadline()
    if deadline is None:
        return urllib3.connection.HTTPConnection._new_conn(conn)
    try:
        sock = _connect(conn, deadline)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    except TimeoutError as exc:
        raise ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
        ) from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    deadline.attach(sock)  # before TLS, so the handshake is bounded too
    return sock


class _HTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _open(self)


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _open(self)


def _reused(conn: BaseHTTPConnection) -> BaseHTTPConnection:
    """A pooled connection taken for this request joins the current deadline."""
    deadline = current_deadline()
    sock = getattr(conn, "sock", None)
    if deadline is not None and isinstance(sock, socket.socket):
        deadline.attach(sock)
    return conn


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection

    def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
        return _reused(super()._get_conn(timeout))


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
        return _reused(super()._get_conn(timeout))


_POOLS: dict[str, type[urllib3.connectionpool.HTTPConnectionPool]] = {
    "http": _HTTPPool,
    "https": _HTTPSPool,
}


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """Mounts the deadline-aware pools, directly and behind an HTTP(S) proxy."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # a SOCKS manager brings pools of its own; only the default ones are replaced
        if manager.pool_classes_by_scheme is urllib3.poolmanager.pool_classes_by_scheme:
            manager.pool_classes_by_scheme = _POOLS
        return manager
