"""One HTTP request with a deadline and a size cap, for every client Octet has (arXiv and
the OpenAI-compatible summary server).

A ``requests`` timeout bounds the wait between two bytes, not the request: a server that
sends one byte every half second holds it for ever. Here a timer shuts the connection's
socket when the deadline passes, so a blocked read returns at once, and the body is read
piece by piece and refused as soon as it passes the cap.
"""
from __future__ import annotations

import socket
import threading

import requests
import urllib3


class DeadlineExceeded(requests.Timeout):
    """A request not finished (connect, headers and the whole body) within its deadline;
    a ``requests.Timeout``, so it is retried like any timeout."""


class BodyTooLarge(ValueError):
    """An answer longer than the cap on bodies; reading stopped there."""


_current = threading.local()


class Deadline:
    """A total time limit on the HTTP requests this thread makes while it is entered. When
    it passes, the connection in use is shut down: a read blocked on a server that sends one
    byte at a time returns at once, where a per-read timeout would never fire."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "Deadline":
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        with self._lock:  # a connection back in the pool is no longer ours to cut
            self._socket = None
        _current.deadline = None

    def watch(self, sock: socket.socket) -> None:
        """The socket this thread's request now uses; cut at once if time is up."""
        with self._lock:
            self._socket = sock
            if self.expired:
                _shut_down(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._socket is not None:
                _shut_down(self._socket)


def _shut_down(sock: socket.socket) -> None:
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # wakes a blocked read (TLS too)
    except OSError:
        pass


class _Watched:
    """Mixed into urllib3's connections: the calling thread's ``Deadline`` may cut their
    socket. (It is taken when known: the connection lets go of it once a response that
    closes the connection has begun.)"""

    def connect(self) -> None:
        super().connect()
        _watch(self)

    def request(self, *args, **kwargs):
        _watch(self)
        try:
            return super().request(*args, **kwargs)
        finally:
            _watch(self)  # connected by now, when it was not before


def _watch(connection) -> None:
    deadline = getattr(_current, "deadline", None)
    sock = getattr(connection, "sock", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """A ``requests`` adapter whose connections a ``Deadline`` can cut; mount it on every
    session that ``http_request`` uses."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}


def http_request(session: requests.Session, method: str, url: str, *, seconds: float,
                 max_bytes: int, **options) -> tuple[requests.Response, bytes]:
    """``(response, body)`` of one request that must finish (connect, headers and the whole
    body) within ``seconds`` and whose body may be at most ``max_bytes``. Raises
    ``DeadlineExceeded`` (a ``requests.Timeout``), ``BodyTooLarge``, or another
    ``requests.RequestException``."""
    with Deadline(seconds) as deadline:
        try:
            with session.request(method, url, timeout=seconds, stream=True,
                                 **options) as response:
                body = read_capped(response, max_bytes)
        except (requests.RequestException, OSError) as error:
            if deadline.expired:
                raise DeadlineExceeded(_late(seconds)) from None
            if isinstance(error, requests.RequestException):
                raise
            raise requests.ConnectionError(error) from None
        if deadline.expired:  # cut after the last byte: the body may be incomplete
            raise DeadlineExceeded(_late(seconds))
    return response, body


def _late(seconds: float) -> str:
    return (f"no complete answer within {seconds:g} s (the deadline of one request: "
            "http_timeout, OCTET_HTTP_TIMEOUT)")


def read_capped(response: requests.Response, max_bytes: int) -> bytes:
    """The body, read piece by piece; ``BodyTooLarge`` as soon as it is over ``max_bytes``
    (counted after decompression, so a small compressed bomb is stopped too)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"the answer announces {int(declared):,} bytes, over {max_bytes:,}")
    body = bytearray()
    for piece in response.iter_content(64 * 1024):
        body += piece
        if len(body) > max_bytes:
            raise BodyTooLarge(f"the answer is over {max_bytes:,} bytes")
    return bytes(body)


def mebibytes(size: int) -> str:
    """``32 MiB``: a byte count for messages."""
    return f"{size / 2 ** 20:g} MiB"
