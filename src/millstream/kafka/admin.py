"""Administering topics and groups: ``client.admin``.

Topic creation and deletion and consumer-group listing speak the Kafka protocol (any Kafka
broker); topic listing and description, the cluster overview, consumer lag and message
inspection call the broker's HTTP admin API at ``ClientConfig.http_url`` (millstream serves it
on its HTTP port; the routes are listed in ``millstream.kafka._admin_model``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code
from aiokafka.protocol.group import MemberAssignment

from millstream.kafka._admin_model import (
    BrokerInfo,
    ClusterInfo,
    ConsumerGroupInfo,
    ConsumerGroupLag,
    ConsumerLag,
    GroupMember,
    InspectedMessage,
    PartitionInfo,
    TopicConfig,
    TopicInfo,
)
from millstream.kafka._lifecycle import Lifecycle
from millstream.kafka._security import connection_kwargs, ssl_context
from millstream.kafka._translate import start_bounded, translate
from millstream.kafka.config import ClientConfig
from millstream.kafka.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConnectionError,
    ConsumerError,
    RateLimitError,
    StreamlineError,
    TimeoutError,
    TopicError,
)
from millstream.kafka.validation import validate_topic_name

if TYPE_CHECKING:
    pass

__all__ = [
    "Admin",
    "BrokerInfo",
    "ClusterInfo",
    "ConsumerGroupInfo",
    "ConsumerGroupLag",
    "ConsumerLag",
    "GroupMember",
    "InspectedMessage",
    "PartitionInfo",
    "TopicConfig",
    "TopicInfo",
]

_TOPIC_EXISTS = 36


class Admin(Lifecycle):
    """Topic and group administration; ``async with client.admin as admin`` or via the client."""

    def __init__(self, client_config: ClientConfig) -> None:
        self._config = client_config
        self._admin: AIOKafkaAdminClient | None = None
        self._http: httpx.AsyncClient | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the broker (bounded by ``connection_timeout_ms``); idempotent."""
        if self._admin is not None:
            return
        admin = AIOKafkaAdminClient(**connection_kwargs(self._config))
        await start_bounded(admin, self._config, "admin client")
        self._admin = admin
        timeout = self._config.request_timeout_ms / 1000
        verify: Any = ssl_context(self._config) if self._config.uses_tls else True
        self._http = httpx.AsyncClient(
            base_url=self._config.http_url,
            timeout=httpx.Timeout(timeout, connect=self._config.connection_timeout_ms / 1000),
            verify=verify,
        )

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        if admin is not None:
            await admin.close()

    @property
    def is_started(self) -> bool:
        return self._admin is not None

    # -- over the Kafka protocol ------------------------------------------------------------

    async def create_topic(self, config: TopicConfig, *, exist_ok: bool = False) -> None:
        """Create a topic; ``TopicError`` if it exists (unless ``exist_ok``)."""
        await self.create_topics([config], exist_ok=exist_ok)

    async def create_topics(self, configs: list[TopicConfig], *, exist_ok: bool = False) -> None:
        """Create several topics in one request; the first refusal is raised."""
        admin = self._require()
        for config in configs:
            validate_topic_name(config.name)
            if config.num_partitions < 1:
                raise ConfigurationError(
                    f"num_partitions must be >= 1, got {config.num_partitions}",
                    hint="A topic has at least one partition",
                )
        new_topics = [
            NewTopic(
                name=c.name,
                num_partitions=c.num_partitions,
                replication_factor=c.replication_factor,
                topic_configs=dict(c.config) if c.config else None,
            )
            for c in configs
        ]
        names = ", ".join(repr(c.name) for c in configs)
        try:
            response = await admin.create_topics(new_topics)
        except Exception as exc:
            raise translate(exc, "admin", f"create topic {names}") from exc
        for entry in response.to_object()["topic_errors"]:
            code = entry["error_code"]
            if code == 0 or (exist_ok and code == _TOPIC_EXISTS):
                continue
            message = entry.get("error_message") or ""
            _raise_code(code, f"create topic {entry['topic']!r}", message)

    async def delete_topic(self, name: str) -> None:
        """Delete a topic and its records; ``TopicError`` if it does not exist."""
        await self.delete_topics([name])

    async def delete_topics(self, names: list[str]) -> None:
        admin = self._require()
        for name in names:
            validate_topic_name(name)
        try:
            response = await admin.delete_topics(list(names))
        except Exception as exc:
            raise translate(exc, "admin", f"delete topic {', '.join(names)}") from exc
        for entry in response.to_object()["topic_error_codes"]:
            if entry["error_code"]:
                _raise_code(entry["error_code"], f"delete topic {entry['topic']!r}", "")

    async def list_consumer_groups(self) -> list[str]:
        """The ids of the groups the broker knows, sorted."""
        admin = self._require()
        try:
            groups = await admin.list_consumer_groups()
        except Exception as exc:
            raise translate(exc, "admin", "list consumer groups") from exc
        return sorted(str(group[0]) for group in groups)

    async def describe_consumer_group(self, group_id: str) -> ConsumerGroupInfo:
        """A group's state, protocol and members with their assigned partitions."""
        admin = self._require()
        try:
            responses = await admin.describe_consumer_groups([group_id])
        except Exception as exc:
            raise translate(exc, "admin", f"describe consumer group {group_id!r}") from exc
        for response in responses:
            for group in response.to_object()["groups"]:
                if group["group"] != group_id:
                    continue
                if group["error_code"]:
                    _raise_code(group["error_code"], f"describe group {group_id!r}", "")
                return ConsumerGroupInfo(
                    group_id=group["group"],
                    state=group["state"],
                    protocol=group["protocol"],
                    protocol_type=group["protocol_type"],
                    members=[_member(m) for m in group["members"]],
                )
        raise ConsumerError(f"the broker did not describe group {group_id!r}")

    # -- over the broker's HTTP admin API ---------------------------------------------------

    async def list_topics(self) -> list[str]:
        """Topic names, sorted (internal ``__`` topics hidden)."""
        data = await self._get("/v1/topics", "list topics")
        names = [TopicInfo.from_json(t).name for t in data]
        return sorted(n for n in names if not n.startswith("__"))

    async def describe_topic(self, name: str) -> TopicInfo:
        """A topic's partition count, replication factor and per-partition offsets."""
        validate_topic_name(name)
        data = await self._get(f"/v1/topics/{_segment(name)}", f"describe topic {name!r}")
        return TopicInfo.from_json(data)

    async def cluster_info(self) -> ClusterInfo:
        """The cluster id, its brokers and controller."""
        return ClusterInfo.from_json(await self._get("/v1/cluster", "cluster info"))

    async def consumer_group_lag(self, group_id: str) -> ConsumerGroupLag:
        """For every partition the group committed an offset on: how far behind the end it is."""
        path = f"/v1/consumer-groups/{_segment(group_id)}/lag"
        return ConsumerGroupLag.from_json(await self._get(path, f"lag of group {group_id!r}"))

    async def consumer_group_topic_lag(self, group_id: str, topic: str) -> ConsumerGroupLag:
        """``consumer_group_lag`` for one topic (every partition of it)."""
        validate_topic_name(topic)
        path = f"/v1/consumer-groups/{_segment(group_id)}/lag/{_segment(topic)}"
        what = f"lag of group {group_id!r} on {topic!r}"
        return ConsumerGroupLag.from_json(await self._get(path, what))

    async def inspect_messages(
        self,
        topic: str,
        partition: int = 0,
        offset: int | None = None,
        limit: int = 20,
    ) -> list[InspectedMessage]:
        """Up to ``limit`` records of one partition from ``offset`` (default: the first
        retained record)."""
        validate_topic_name(topic)
        params: dict[str, int] = {"partition": partition, "limit": limit}
        if offset is not None:
            params["offset"] = offset
        data = await self._get(
            f"/v1/inspect/{_segment(topic)}", f"inspect {topic!r}", params=params
        )
        return [InspectedMessage.from_json(m) for m in data]

    async def latest_messages(self, topic: str, count: int = 10) -> list[InspectedMessage]:
        """The ``count`` newest records of a topic across its partitions, oldest first."""
        validate_topic_name(topic)
        data = await self._get(
            f"/v1/inspect/{_segment(topic)}/latest",
            f"latest messages of {topic!r}",
            params={"count": count},
        )
        return [InspectedMessage.from_json(m) for m in data]

    # -- internals --------------------------------------------------------------------------

    def _require(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            raise ConnectionError(
                "Admin client not started",
                hint="Use 'async with StreamlineClient(...)' or await admin.start()",
                retryable=False,
            )
        return self._admin

    async def _get(self, path: str, what: str, params: dict[str, int] | None = None) -> Any:
        self._require()
        assert self._http is not None
        url = f"{self._config.http_url}{path}"
        try:
            response = await self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"{what}: {url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise ConnectionError(
                f"{what}: cannot reach the HTTP admin API at {url}: {exc}",
                hint="Set http_url (or STREAMLINE_HTTP_URL) to the broker's HTTP address, "
                "e.g. http://localhost:4437 for millstream",
            ) from exc
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError as exc:
                raise StreamlineError(f"{what}: {url} did not answer JSON") from exc
        raise _http_error(response, what)


def _segment(value: str) -> str:
    """One URL path segment, percent-encoded (group ids may contain '/', '?', spaces)."""
    return quote(value, safe="")


def _raise_code(code: int, what: str, message: str) -> None:
    exc = for_code(code)(message) if message else for_code(code)()
    raise translate(exc, "admin", what)


def _member(member: dict[str, Any]) -> GroupMember:
    assignment: list[tuple[str, int]] = []
    raw = member.get("member_assignment") or b""
    if raw:
        try:
            decoded = MemberAssignment.decode(raw)
            assignment = [
                (topic, partition)
                for topic, partitions in decoded.assignment
                for partition in partitions
            ]
        except Exception:  # another protocol's assignment (not "consumer"): leave it empty
            assignment = []
    return GroupMember(
        member_id=member["member_id"],
        client_id=member["client_id"],
        host=member["client_host"],
        assignment=sorted(assignment),
    )


def _http_error(response: httpx.Response, what: str) -> StreamlineError:
    """A JSON error answer (``{"error": {"code", "message"}}``) as the SDK's error."""
    status = response.status_code
    code, message = "", response.text[:200]
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code = str(error.get("code", ""))
        message = str(error.get("message", message))
    except ValueError:
        pass
    text = f"{what}: {message or f'HTTP {status}'}"
    if status == 404 and code in ("topic_not_found", "partition_not_found"):
        return TopicError(text)
    if status == 404 and code == "group_not_found":
        return ConsumerError(text, hint="The group has no committed offsets (yet)")
    if status == 404:
        return ConfigurationError(
            text,
            hint="The server at http_url has no such admin route: is it millstream's HTTP "
            "port (or a broker with the Streamline HTTP API)?",
        )
    if status == 400:
        return ConfigurationError(text, hint="Check the arguments named in the message")
    if status == 401:
        return AuthenticationError(text, hint="The HTTP admin API needs credentials")
    if status == 403:
        return AuthorizationError(text)
    if status == 429:
        retry_after = response.headers.get("retry-after", "0")
        seconds = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 0.0
        return RateLimitError(int(seconds * 1000), text)
    if status >= 500:
        return StreamlineError(text, hint="The server failed; try again later", retryable=True)
    return StreamlineError(text)
