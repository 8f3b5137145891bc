"""What the Elasticsearch emulator says about its indices, in Elasticsearch's documented shapes:
``GET /_cat/indices`` (one row of strings per index) and ``GET /{index}/_field_caps`` (each field's type
per index, as dynamic mapping would have made it from the stored documents).

Dynamic mapping as Elasticsearch does it by default: a string that reads as a date
(``strict_date_optional_time``) is ``date``, any other string ``text`` with a ``.keyword`` sub-field of
type ``keyword``, whole numbers ``long``, other numbers ``float``, ``true``/``false`` ``boolean``, and
an inner object ``object`` with its fields under dotted names. Explicit types (``mappings``) win.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_AGGREGATABLE = {"keyword", "long", "float", "boolean", "date", "double", "integer", "ip"}
METADATA_FIELDS = {"_id": "_id", "_index": "_index", "_source": "_source", "_version": "_version"}
CAT_COLUMNS = (
    "health",
    "status",
    "index",
    "uuid",
    "pri",
    "rep",
    "docs.count",
    "docs.deleted",
    "store.size",
    "pri.store.size",
)


def _value_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "date" if _DATE.match(value) else "text"
    if isinstance(value, Mapping):
        return "object"
    return None


def _fields(source: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in source.items():
        name = f"{prefix}{key}"
        values = value if isinstance(value, list) else [value]
        for item in values:
            kind = _value_type(item)
            if kind is None:
                continue
            yield name, kind
            if kind == "text":
                yield f"{name}.keyword", "keyword"
            if isinstance(item, Mapping):
                yield from _fields(item, f"{name}.")
            break


def index_mapping(
    documents: Sequence[Mapping[str, Any]], explicit: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Field name → type, as the first document to hold a field decided it (dynamic mapping)."""
    mapping: dict[str, str] = dict(explicit or {})
    for document in documents:
        for name, kind in _fields(document.get("_source") or {}):
            mapping.setdefault(name, kind)
    return mapping


def field_caps(
    mappings: Mapping[str, Mapping[str, str]], patterns: Sequence[str], include_metadata: bool = True
) -> dict[str, Any]:
    """The ``_field_caps`` answer over ``mappings`` (index → field → type) for field ``patterns``."""
    by_field: dict[str, dict[str, list[str]]] = {}
    for index, mapping in sorted(mappings.items()):
        fields = {**(METADATA_FIELDS if include_metadata else {}), **mapping}
        for name, kind in fields.items():
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                by_field.setdefault(name, {}).setdefault(kind, []).append(index)
    answer: dict[str, Any] = {}
    for name, types in sorted(by_field.items()):
        entry: dict[str, Any] = {}
        for kind, indices in types.items():
            caps: dict[str, Any] = {
                "type": kind,
                "metadata_field": name in METADATA_FIELDS,
                "searchable": kind not in ("object", "_source"),
                "aggregatable": kind in _AGGREGATABLE or name in ("_id", "_index"),
            }
            if len(types) > 1:
                caps["indices"] = indices
            entry[kind] = caps
        answer[name] = entry
    return {"indices": sorted(mappings), "fields": answer}


def _human(size: int) -> str:
    for unit, scale in (("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}{unit}"
    return f"{size}b"


def cat_row(
    name: str, documents: Sequence[Mapping[str, Any]], health: str, raw_bytes: bool
) -> dict[str, str]:
    """One ``_cat/indices?format=json`` row: every value a string, sizes in bytes with ``bytes=b``."""
    size = sum(len(json.dumps(d.get("_source") or {})) for d in documents)
    shown = str(size) if raw_bytes else _human(size)
    return {
        "health": health,
        "status": "close" if health == "closed" else "open",
        "index": name,
        "uuid": hashlib.sha1(name.encode()).hexdigest()[:22],
        "pri": "1",
        "rep": "0" if health == "green" else "1",
        "docs.count": str(len(documents)),
        "docs.deleted": "0",
        "store.size": shown,
        "pri.store.size": shown,
    }


def cat_text(rows: Sequence[Mapping[str, str]], columns: Sequence[str], verbose: bool) -> str:
    """The plain-text table ``_cat`` answers without ``format=json``."""
    lines = [[row.get(c, "") for c in columns] for row in rows]
    if verbose:
        lines.insert(0, list(columns))
    widths = [max((len(line[i]) for line in lines), default=0) for i in range(len(columns))]
    return "".join(
        " ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n" for line in lines
    )
