"""Secure by default: an open node only listens on loopback.

On 127.0.0.1 (or ``::1``, ``localhost``) a node without ``require_auth`` serves anyone on the
machine, as a development database does. Asked to listen on any other address without
requiring tokens, it refuses to start and says how to enable them, unless ``insecure`` says
the operator means it (a private network behind their own gateway).
"""

from __future__ import annotations

import ipaddress

from ._options import NodeOptions

__all__ = ["InsecureBind", "insecure_reason", "is_loopback"]


class InsecureBind(RuntimeError):
    """The node would listen beyond loopback without requiring tokens."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def insecure_reason(
    options: NodeOptions, *, listen_http: bool = True, insecure: bool | None = None
) -> str | None:
    """Why the node must not start as configured, or ``None`` when it may."""
    if options.require_auth or (options.insecure if insecure is None else insecure):
        return None
    if not (listen_http or options.kafka) or is_loopback(options.host):
        return None
    return (
        f"refusing to listen on {options.host} without authentication: anyone who can reach "
        "it could read, append to and delete every stream. Create a token and require it:\n"
        "  millstream tokens create --name admin --scope admin: --data-dir DIR\n"
        f"  millstream serve --host {options.host} --require-auth --data-dir DIR\n"
        "(TLS: add --tls-cert CERT --tls-key KEY), or pass --insecure to serve it open anyway "
        "(a private network behind your own gateway). See docs/security.md."
    )
