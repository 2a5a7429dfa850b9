"""What a node is configured with: one flat set of options, as ``millstream serve`` takes them."""

from __future__ import annotations

from dataclasses import dataclass, field

from millstream.auth import AuthLimits
from millstream.server.http import DEFAULT_MAX_BODY_SIZE
from millstream.server.kafka import DEFAULT_MAX_REQUEST_SIZE
from millstream.services.llm import GatewayConfig

__all__ = ["NodeOptions"]


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """Options of both doors and of the services the node builds (``build_services``).

    A new service adds its options here, beside a ``millstream serve`` flag of the same name.
    """

    # -- the HTTP door
    host: str = "127.0.0.1"
    port: int = 4437  # 0: any free port
    long_poll_timeout: float = 30.0
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    sse_reconnect_seconds: float = 60.0
    http_fast_path: bool = True
    public_url: str | None = None  # the HTTP root clients see, when not the Host they send
    # -- the Kafka door
    kafka: bool = True
    kafka_port: int = 9092  # 0: any free port
    kafka_advertised_host: str | None = None  # what Metadata names; None: the bind host
    kafka_max_request_size: int = DEFAULT_MAX_REQUEST_SIZE
    kafka_idle_timeout: float = 600.0
    kafka_frame_timeout: float = 30.0
    kafka_auto_create_topics: bool = True
    # -- security (docs/security.md)
    #: refuse requests and Kafka connections without a token (else they act as anonymous,
    #: which may do everything; an address other than loopback needs this or ``insecure``)
    require_auth: bool = False
    insecure: bool = False  # listen beyond loopback without requiring tokens
    tls_cert: str | None = None  # PEM certificate chain: both doors speak TLS
    tls_key: str | None = None  # PEM private key of tls_cert
    limits: AuthLimits = field(default_factory=AuthLimits)
    #: create an ``admin:`` token at start and print it (``serve --memory --require-auth``,
    #: where no ``tokens create`` can reach the store)
    bootstrap_token: bool = False
    # -- observability (docs/operations.md)
    metrics: bool = True  # GET /metrics (Prometheus)
    access_log: bool = False  # one log line per HTTP request (logger millstream.access)
    otel: bool = False  # OpenTelemetry spans per request (the otel extra; fast path off)
    # -- services
    subscriptions: bool = True
    # -- a cluster (several nodes on one shared store, e.g. PostgreSQL)
    node_name: str | None = None  # this node among the others; None: host-pid-random
    #: seconds after which a node that stopped heartbeating is out of the cluster (its Kafka
    #: partitions and groups move) and the services it ran start on another node
    cluster_ttl: float = 6.0
    kafka_admin: bool = True  # the HTTP admin API of the Kafka SDK (/v1/topics, lag, inspect)
    sentinel: bool = True  # anomaly detection over the LLM telemetry topics
    #: the LLM gateway (``docs/llm.md``); ``None`` does not run it. The default reads the
    #: provider keys and base URLs from the standard environment variables, as the official
    #: SDKs do, and with none set the gateway runs and answers 503 saying what to set.
    llm: GatewayConfig | None = field(default_factory=GatewayConfig.from_env)
    #: seconds the doors wait for in-flight requests on shutdown before cancelling them
    graceful_timeout: float = 10.0
