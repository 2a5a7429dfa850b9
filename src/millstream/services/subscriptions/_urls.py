"""Webhook URL validation against server-side request forgery (PROTOCOL.md §6.2, §12.8).

Two checks. At create time the URL itself: ``https`` required, plain ``http`` only for the
development hosts ``localhost`` and ``127.0.0.x``; literal private, loopback, link-local,
metadata and other non-global addresses are refused. At delivery time the host name is resolved
and refused if any address it names is not global, so ``https://my-box.internal`` pointing at
10.0.0.5 (or a decimal ``https://2130706433``) is caught too. (A DNS answer that changes between
the check and the connect can still slip through; deployments that care should also filter
egress at the network layer.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from ._errors import SubscriptionError

__all__ = ["check_resolved_target", "is_dev_host", "validate_webhook_url"]

MAX_URL_LENGTH = 2048
_DEV_IPV4 = re.compile(r"\A127\.0\.0\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\Z")
_BLOCKED_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def is_dev_host(host: str) -> bool:
    """The development exception of §6.2: ``localhost`` and ``127.0.0.x``."""
    return host == "localhost" or _DEV_IPV4.match(host) is not None


def _reject(message: str) -> SubscriptionError:
    return SubscriptionError("WEBHOOK_URL_REJECTED", message)


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def validate_webhook_url(url: str) -> str:
    """Return ``url`` if it is an acceptable webhook target, else raise ``WEBHOOK_URL_REJECTED``."""
    if len(url) > MAX_URL_LENGTH or any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise _reject("webhook.url is not a valid URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _reject("webhook.url is not a valid URL") from exc
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise _reject("webhook.url must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise _reject("webhook.url must not carry credentials")
    if port == 0:
        raise _reject("webhook.url has an invalid port")
    if is_dev_host(host):
        return url
    if parts.scheme == "http":
        raise _reject("http webhook URLs are only allowed for localhost or 127.0.0.x; use https")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if not _is_public(address):
            raise _reject("webhook.url must not target private, loopback or link-local addresses")
        return url
    if host == "localhost" or host.endswith(_BLOCKED_SUFFIXES) or "." not in host:
        raise _reject("webhook.url must name a public host")
    if re.fullmatch(r"[0-9.x]+", host):  # decimal/hex IPv4 spellings such as 2130706433
        raise _reject("webhook.url must not use numeric host spellings")
    return url


async def check_resolved_target(url: str) -> None:
    """Resolve the webhook host and refuse non-global addresses (the delivery-time check)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if is_dev_host(host):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _reject(f"webhook host {host!r} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not _is_public(address):
            raise _reject(f"webhook host {host!r} resolves to a non-public address")
