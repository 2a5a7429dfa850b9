#!/usr/bin/env python3
"""Write the Kafka message dataclasses of ``millstream.server.kafka.codec`` from Kafka's JSON
message schemas (Apache-2.0; ``clients/src/main/resources/common/message/`` in apache/kafka).

    tools/gen_kafka_messages.py [SCHEMA_DIR]

SCHEMA_DIR defaults to the copy of those schemas that kafka-python (a dev dependency, the
codec's test oracle) ships in ``kafka/protocol/schemas/resources``. Only the APIs and versions
of ``_versions.SUPPORTED_VERSIONS`` are generated; fields that exist in none of those versions
are left out. ``tests/kafka_codec/test_generated.py`` fails when the checked-in modules differ
from what this script writes, so edit this script (or the versions table), never the output.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "millstream" / "server" / "kafka" / "codec"


def _load(name: str) -> Any:
    """A codec module by path: importing the package would import the modules we write."""
    spec = importlib.util.spec_from_file_location(name, PACKAGE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while building a class
    spec.loader.exec_module(module)
    return module


parse_versions = _load("_fields").parse_versions
_versions = _load("_versions")
SUPPORTED_VERSIONS = _versions.SUPPORTED_VERSIONS
ApiKey = _versions.ApiKey

# module → the schema names (without Request/Response) it holds, one module per API family
FAMILIES: dict[str, tuple[str, ...]] = {
    "_msg_cluster": ("ApiVersions", "Metadata"),
    "_msg_produce": ("Produce", "InitProducerId"),
    "_msg_fetch": ("Fetch", "ListOffsets", "DeleteRecords"),
    "_msg_groups": (
        "FindCoordinator",
        "JoinGroup",
        "SyncGroup",
        "Heartbeat",
        "LeaveGroup",
        "OffsetCommit",
        "OffsetFetch",
        "ListGroups",
        "DescribeGroups",
    ),
    "_msg_admin": ("CreateTopics", "DeleteTopics", "CreatePartitions", "DescribeConfigs"),
    "_msg_sasl": ("SaslHandshake", "SaslAuthenticate"),
}

FAMILY_DOCS: dict[str, str] = {
    "_msg_cluster": "ApiVersions (18) and Metadata (3): how a client finds versions, brokers, "
    "topics.",
    "_msg_produce": "Produce (0) and InitProducerId (22): writes and idempotent producer ids.",
    "_msg_fetch": "Fetch (1), ListOffsets (2) and DeleteRecords (21): reads and log positions.",
    "_msg_groups": "Consumer groups: FindCoordinator (10), JoinGroup (11), SyncGroup (14), "
    "Heartbeat (12),\nLeaveGroup (13), OffsetCommit (8), OffsetFetch (9), ListGroups (16), "
    "DescribeGroups (15).",
    "_msg_admin": "Topic administration: CreateTopics (19), DeleteTopics (20), "
    "CreatePartitions (37),\nDescribeConfigs (32).",
    "_msg_sasl": "SaslHandshake (17) and SaslAuthenticate (36).",
}

PRIMITIVES = {
    "int8": ("int", "Int8"),
    "int16": ("int", "Int16"),
    "int32": ("int", "Int32"),
    "int64": ("int", "Int64"),
    "uint16": ("int", "Uint16"),
    "float64": ("float", "Float64"),
    "bool": ("bool", "Bool"),
    "string": ("str", "String"),
    "bytes": ("bytes", "Bytes"),
    "uuid": ("UUID", "Uuid"),
    "records": ("bytes", "Records"),
}


def load_schema(path: Path) -> dict[str, Any]:
    text = re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.MULTILINE)
    data: dict[str, Any] = json.loads(text)
    return data


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def overlaps(spec: str, supported: tuple[int, int]) -> bool:
    low, high = parse_versions(spec)
    return low <= supported[1] and high >= supported[0]


@dataclass
class StructDef:
    name: str
    owner: str  # the top-level message name
    fields: list[dict[str, Any]]
    supported: tuple[int, int]
    top: dict[str, Any] | None = None  # the schema, for the top-level message
    lines: list[str] = field(default_factory=list)


class Generator:
    def __init__(self, schema_dir: Path) -> None:
        self.schema_dir = schema_dir
        self.structs: list[StructDef] = []
        self.names: dict[str, int] = {}

    def message(self, stem: str, kind: str) -> list[StructDef]:
        schema = load_schema(self.schema_dir / f"{stem}{kind}.json")
        supported = SUPPORTED_VERSIONS[ApiKey(schema["apiKey"])]
        out: list[StructDef] = []
        self._collect(schema["name"], schema["name"], schema["fields"], supported, out)
        out[-1].top = schema
        return out

    def _collect(
        self,
        name: str,
        owner: str,
        fields: list[dict[str, Any]],
        supported: tuple[int, int],
        out: list[StructDef],
    ) -> None:
        kept = [f for f in fields if overlaps(f["versions"], supported)]
        for f in kept:
            if "fields" in f:
                self._collect(f["type"].removeprefix("[]"), owner, f["fields"], supported, out)
        out.append(StructDef(name, owner, kept, supported))


def struct_class_name(struct: StructDef, clashes: set[str], taken: dict[str, int]) -> str:
    """Kafka's struct name; prefixed by its API (then by its message) where that name clashes."""
    if struct.name not in clashes or struct.name == struct.owner:
        return struct.name
    stem = struct.owner.removesuffix("Request").removesuffix("Response")
    return stem + struct.name if stem + struct.name not in taken else struct.owner + struct.name


def default_literal(f: dict[str, Any], kind: str, nullable: bool, class_name: str | None) -> str:
    default = f.get("default")
    if kind.startswith("[]"):
        return "None" if default == "null" else "()"
    if class_name is not None:
        return "None" if default == "null" else f"{class_name}()"
    if default == "null" or (nullable and kind == "records"):
        return "None"
    if kind in ("int8", "int16", "int32", "int64", "uint16"):
        return str(int(str(default), 0)) if default is not None else "0"
    if kind == "float64":
        return repr(float(default)) if default is not None else "0.0"
    if kind == "bool":
        return "True" if str(default).lower() == "true" else "False"
    if kind == "string":
        return repr(default) if default is not None else '""'
    if kind == "bytes":
        return 'b""'
    if kind == "uuid":
        return "ZERO_UUID"
    if kind == "records":
        return 'b""'
    raise ValueError(f"no default for {kind}")


def clipped(spec: str, supported: tuple[int, int]) -> str:
    """``spec`` with an upper bound at or past our highest version written as ``low+``: the
    output then changes only when a version we support does, not when Kafka adds one."""
    low, high = parse_versions(spec)
    if spec != "none" and not spec.endswith("+") and high >= supported[1]:
        return f"{low}+"
    return spec


def field_line(
    f: dict[str, Any], names: dict[str, str], response: bool, supported: tuple[int, int]
) -> str:
    kind: str = f["type"]
    versions = clipped(f["versions"], supported)
    nullable = clipped(f.get("nullableVersions", "none"), supported)
    extra = ""
    if nullable != "none":
        extra += f', nullable="{nullable}"'
    if "tag" in f:
        extra += f", tag={f['tag']}"
        tagged = clipped(f.get("taggedVersions", f["versions"]), supported)
        if tagged != versions:
            extra += f', tagged="{tagged}"'
    is_null = nullable != "none"
    if kind.startswith("[]"):
        element = kind[2:]
        if element in PRIMITIVES:
            py = f"Sequence[{PRIMITIVES[element][0]}]"
            marker = f'Array("{versions}", "{element}"{extra})'
        else:
            py = f"Sequence[{names[element]}]"
            marker = f'Array("{versions}", {names[element]}{extra})'
        default = default_literal(f, kind, is_null, None)
    elif kind in PRIMITIVES:
        py, marker_name = PRIMITIVES[kind]
        if kind == "records":
            py = "RecordData" if response else "bytes | memoryview"
        marker = f'{marker_name}("{versions}"{extra})'
        default = default_literal(f, kind, is_null, None)
    else:
        py = names[kind]
        marker = f'Struct("{versions}", {names[kind]}{extra})'
        default = default_literal(f, kind, is_null, names[kind])
    if is_null:
        py += " | None"
    return f"    {snake(f['name'])}: Annotated[{py}, {marker}] = {default}"


def render_module(module: str, stems: tuple[str, ...], gen: Generator) -> tuple[str, list[str]]:
    groups = [gen.message(stem, kind) for stem in stems for kind in ("Request", "Response")]
    all_structs = [s for group in groups for s in group]
    seen: dict[str, int] = {}
    for s in all_structs:
        seen[s.name] = seen.get(s.name, 0) + 1
    clashes = {name for name, count in seen.items() if count > 1} | set(gen.names)
    body: list[str] = []
    exported: list[str] = []
    for group in groups:
        names: dict[str, str] = {}
        for struct in group:
            class_name = struct_class_name(struct, clashes, gen.names)
            if class_name in gen.names:
                raise SystemExit(f"class name {class_name} generated twice")
            gen.names[class_name] = 1
            names[struct.name] = class_name
            exported.append(class_name)
            response = struct.owner.endswith("Response")
            body.append("")
            body.append("")
            body.append("@dataclass(frozen=True, slots=True, kw_only=True)")
            body.append(f"class {class_name}:")
            if struct.top is not None:
                top = struct.top
                key = ApiKey(top["apiKey"])
                low, high = SUPPORTED_VERSIONS[key]
                flexible: int | None = parse_versions(top["flexibleVersions"])[0]
                if top["flexibleVersions"] == "none":
                    flexible = None
                body.append(
                    f'    """{top["name"].removesuffix(top["type"].capitalize())} '
                    f"{top['type']} (API key {top['apiKey']}), versions {low}-{high}"
                    + (
                        f", flexible from {flexible}"
                        if flexible is not None and flexible <= high
                        else ""
                    )
                    + '."""'
                )
                body.append("")
                body.append(f"    API_KEY: ClassVar[int] = {top['apiKey']}")
                body.append(f"    FLEXIBLE_FROM: ClassVar[int | None] = {flexible}")
            else:
                body.append(f'    """Part of ``{struct.owner}``."""')
            if struct.fields:
                body.append("")
            for f in struct.fields:
                body.append(field_line(f, names, response, struct.supported))
    header = [
        f'"""{FAMILY_DOCS[module]}',
        "",
        "Generated by ``tools/gen_kafka_messages.py`` from Kafka's JSON message schemas",
        "(Apache-2.0, ``clients/src/main/resources/common/message/``): do not edit by hand.",
        "Each field carries the versions it exists in; a field absent from a version keeps its",
        'default when decoded and is skipped when encoded. Arrays decode as lists."""',
        "",
        "from collections.abc import Sequence",
        "from dataclasses import dataclass",
        "from typing import Annotated, ClassVar",
        "from uuid import UUID",
        "",
    ]
    text = "\n".join(body)
    markers = sorted(
        {m for m in re.findall(r"\b([A-Z][a-z0-9]+)\(\"", text)}
        & {"Array", "Struct", *(p[1] for p in PRIMITIVES.values())}
    )
    header.append(f"from ._fields import {', '.join(markers)}")
    needs_record_data = "RecordData" in text
    needs_zero = "ZERO_UUID" in text
    extra_imports = [
        n for n, need in (("RecordData", needs_record_data), ("ZERO_UUID", needs_zero)) if need
    ]
    if extra_imports:
        header.append(f"from ._primitives import {', '.join(extra_imports)}")
    if "UUID" not in text.replace("ZERO_UUID", ""):
        header.remove("from uuid import UUID")
    header.append("")
    header.append(f"__all__ = [{', '.join(repr(n) for n in sorted(exported))}]")
    return "\n".join(header) + text + "\n", exported


def main() -> None:
    if len(sys.argv) > 1:
        schema_dir = Path(sys.argv[1])
    else:
        import kafka.protocol.schemas

        schema_dir = Path(kafka.protocol.schemas.__file__).parent / "resources"
    for module, text in generate(schema_dir).items():
        (PACKAGE / f"{module}.py").write_text(text)
        print(f"wrote {module}.py")


def generate(schema_dir: Path) -> dict[str, str]:
    """Module name → source text, for every family."""
    gen = Generator(schema_dir)
    return {
        module: ruff_format(render_module(module, stems, gen)[0])
        for module, stems in FAMILIES.items()
    }


def ruff_format(source: str) -> str:
    """The source as ``ruff format`` (the project's formatter, from the same venv) writes it."""
    ruff = str(Path(sys.executable).parent / "ruff")
    name = str(PACKAGE / "generated.py")
    for command in (
        [ruff, "check", "--fix", "--select", "I,RUF022", "--quiet", "--stdin-filename", name, "-"],
        [ruff, "format", "--stdin-filename", name, "-"],
    ):
        source = subprocess.run(
            command, input=source, capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
    return source


if __name__ == "__main__":
    main()
