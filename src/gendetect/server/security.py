"""Request checks that run before any body is read: Host, origin, bearer token and declared size.

:class:`RequestGuard` is a plain ASGI middleware, outermost in the app, so that a request with a wrong token, a
foreign ``Host`` or ``Origin``, or a ``Content-Length`` above the limit is answered (and its connection closed)
without reading a byte of its body. A body without ``Content-Length`` (chunked) is counted as it is read and cut off
at the limit.

The rules (also in the README's ``gendetect serve`` section):

* **Host** (only when no token is set): the ``Host`` header must name a loopback name (``localhost``,
  ``127.0.0.1``, ``[::1]``), the bound address, or an ``--allowed-host`` entry; else 400. This stops DNS rebinding,
  where a foreign page gets the browser to call the server under the page's own host name.
* **Origin** (``POST``, ``PUT``, ``PATCH``, ``DELETE``): a request whose ``Origin`` (or, without one, ``Referer``)
  is another origin than the server's own, or whose ``Sec-Fetch-Site`` says ``cross-site``/``same-site``, is refused
  with 403 unless ``--cors-origin`` lists that origin. Requests without these headers (curl, scripts) pass.
* **Token**: with ``--token``, every ``/v1/`` request needs ``Authorization: Bearer TOKEN`` (compared as bytes in
  constant time; any header bytes give 401, never 500).
* **Size**: ``Content-Length`` above the route's limit gives 413 before the body is read.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Starlette's TestClient connects as this peer; no network peer can have it (uvicorn fills in the socket's address).
_IN_PROCESS_PEER = "testclient"


class BodyTooLarge(Exception):
    """A request body (without Content-Length) grew past its limit while it was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than the {_mib(limit)} limit")
        self.limit = limit


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n / 1024:g} KiB"


def is_loopback(host: str) -> bool:
    """Whether a bind address or host name stays on this machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> str:
    """``Host`` header -> lower-case host without port; ``[::1]:8000`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value  # a bare name, or an unbracketed IPv6 address (not valid in Host, matched as is)


def allowed_host_set(bind_host: str | None, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names accepted without a token: the loopback names, the bound address (unless it is a wildcard such as
    0.0.0.0, which names no host) and ``extra`` (``--allowed-host``)."""
    hosts = set(LOOPBACK_HOSTS)
    if bind_host and bind_host not in ("0.0.0.0", "::", ""):
        hosts.add(split_host(bind_host) if bind_host.startswith("[") else bind_host.strip().lower())
    hosts.update(split_host(h) if h.startswith("[") or h.count(":") == 1 else h.strip().lower() for h in extra)
    return frozenset(hosts)


def normalise_origin(origin: str) -> str:
    """``HTTP://Example.com:80/`` -> ``http://example.com``: scheme and host lower-case, default ports dropped."""
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.hostname:
        return origin.strip().lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{parts.scheme.lower()}://{host}{port}"


@dataclass(frozen=True)
class GuardConfig:
    """What :class:`RequestGuard` enforces."""

    token: str | None = None  # bearer token for /v1/*; None: open, and then the Host check applies
    allowed_hosts: frozenset[str] = field(default_factory=lambda: allowed_host_set(None))
    cors_origins: frozenset[str] = frozenset()  # normalised origins allowed to make state-changing requests
    body_limit: Callable[[str, str], int] = lambda method, path: 2**20  # (method, path) -> max body bytes
    protected_prefix: str = "/v1/"


class RequestGuard:
    """ASGI middleware: refuse bad requests before their body is read (see the module docstring)."""

    def __init__(self, app: ASGIApp, config: GuardConfig) -> None:
        self.app = app
        self.config = config
        self._token = config.token.encode("utf-8") if config.token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for k, v in scope.get("headers", ()):
            headers.setdefault(k.lower(), v)
        problem = self._check(scope, headers)
        if problem is not None:
            status, detail, extra = problem
            logger.info("refused %s %s: %d %s", scope.get("method"), scope.get("path"), status, detail)
            await _send_json(send, status, detail, extra)
            return
        limit = self.config.body_limit(scope.get("method", "GET"), scope.get("path", ""))
        if b"content-length" in headers:  # checked against the limit in _check; the server enforces the count
            await self.app(scope, receive, send)
            return
        counted = _CountingReceive(receive, limit)
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, send_tracking)
        except BodyTooLarge as e:
            if started:
                raise
            await _send_json(send, 413, str(e), {})

    def _check(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, dict[str, str]] | None:
        cfg = self.config
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        host_header = headers.get(b"host", b"").decode("latin-1")
        client = scope.get("client")
        in_process = bool(client) and client[0] == _IN_PROCESS_PEER
        if self._token is None and not in_process:
            host = split_host(host_header)
            if host not in cfg.allowed_hosts:
                why = (
                    f"Host {host_header!r} is not allowed (DNS rebinding guard); start the server with "
                    f"--allowed-host {host or 'NAME'} or with --token"
                )
                return 400, why, {}
        if method in STATE_CHANGING:
            refused = self._cross_origin(scope, headers, host_header)
            if refused is not None:
                return 403, refused, {}
        if self._token is not None and path.startswith(cfg.protected_prefix) and method != "OPTIONS":
            scheme, _, value = headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not secrets.compare_digest(value.strip(), self._token):
                return 401, "missing or wrong bearer token", {"www-authenticate": "Bearer"}
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
                if n < 0:
                    raise ValueError(n)
            except ValueError:
                return 400, f"invalid Content-Length {length.decode('latin-1')!r}", {}
            limit = cfg.body_limit(method, path)
            if n > limit:
                return 413, f"request body of {n} bytes is larger than the {_mib(limit)} limit of {path}", {}
        return None

    def _cross_origin(self, scope: Scope, headers: dict[bytes, bytes], host_header: str) -> str | None:
        """Why a state-changing request counts as cross-origin and not allowed, or None when it may go on."""
        # Same origin means the same host and port as the Host header; the scheme is not compared, so that a TLS
        # proxy in front (https outside, http here) does not make the server's own page cross-origin.
        own = _netloc(normalise_origin(f"{scope.get('scheme', 'http')}://{host_header}")) if host_header else None
        allowed = self.config.cors_origins
        origin = headers.get(b"origin")
        if origin is not None:
            o = origin.decode("latin-1").strip()
            norm = "null" if o == "null" else normalise_origin(o)
            if (own is not None and _netloc(norm) == own) or norm in allowed or "*" in allowed:
                return None
            return f"cross-origin request from {o!r} refused; allow it with --cors-origin {o}"
        site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
        if site in ("cross-site", "same-site") and "*" not in allowed:
            return f"cross-origin request refused (Sec-Fetch-Site: {site}); send an Origin allowed by --cors-origin"
        referer = headers.get(b"referer")
        if referer is not None:
            r = normalise_origin(referer.decode("latin-1"))
            if (own is None or _netloc(r) != own) and r not in allowed and "*" not in allowed:
                return f"cross-origin request (Referer {r}) refused; allow it with --cors-origin {r}"
        return None


def _netloc(origin: str) -> str:
    """``https://example.com:8443`` -> ``example.com:8443``."""
    return origin.partition("://")[2] or origin


class _CountingReceive:
    """Wraps ``receive`` and raises :class:`BodyTooLarge` once the body passes ``limit`` bytes."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive, self.limit, self.seen = receive, limit, 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise BodyTooLarge(self.limit)
        return message


async def _send_json(send: Send, status: int, detail: str, extra: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the unread body is not drained: the connection cannot be reused
        *((k.encode(), v.encode()) for k, v in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = [
    "BodyTooLarge",
    "GuardConfig",
    "RequestGuard",
    "allowed_host_set",
    "is_loopback",
    "normalise_origin",
    "split_host",
]
