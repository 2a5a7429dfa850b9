"""Durable Streams subscriptions (PROTOCOL.md §6, §7): webhook and pull-wake delivery.

``SubscriptionService`` is what the HTTP app mounts under ``{stream-root}__ds/``; the engine
under it keeps cursors per linked stream, issues fenced wakes, signs webhooks with a persisted
Ed25519 key, and stores its state in the log under reserved ``__ds/`` paths.
"""

from ._config import SubscriptionConfig, parse_config
from ._errors import SubscriptionError
from ._glob import glob_match
from ._keys import KeyRing
from ._routes import SubscriptionService
from ._service import SubscriptionEngine
from ._urls import validate_webhook_url
from ._webhook import backoff_delay

__all__ = [
    "KeyRing",
    "SubscriptionConfig",
    "SubscriptionEngine",
    "SubscriptionError",
    "SubscriptionService",
    "backoff_delay",
    "glob_match",
    "parse_config",
    "validate_webhook_url",
]
