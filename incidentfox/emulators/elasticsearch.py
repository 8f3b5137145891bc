"""An offline Elasticsearch (or OpenSearch) on 127.0.0.1: the parts of its REST API that the
``elasticsearch`` toolset uses, in its documented shapes.

    async with ElasticsearchEmulator() as es:
        es.index("logs-checkout", [{"@timestamp": "...", "message": "payment declined"}])
        config = {"integrations": {"elasticsearch": es.integration_config()}}

Endpoints: ``GET /`` (cluster info; ``distribution="opensearch"`` answers as OpenSearch does),
``POST``/``GET /{index}/_search`` (the body, or ``?source=`` with ``source_content_type``), ``POST
/_bulk`` and ``/{index}/_bulk`` (NDJSON ``index``/``create`` actions), ``POST /{index}/_doc``,
``GET /_cat/indices[/{index}]`` (``format=json``, ``bytes=b``, ``h``, ``s``, ``v``; health from
``health``) and ``GET``/``POST /[{index}/]_field_caps?fields=…`` (types from dynamic mapping of the
stored documents, or ``mappings``; see ``es_catalog``).
Index names may be patterns with ``*`` and comma lists; a concrete name that does not exist is 404
``index_not_found_exception``. The query DSL subset is ``es_query``'s. Errors are ES's JSON bodies: 400
for a query it cannot parse, 401 ``security_exception`` when ``api_key`` or ``basic_auth`` is set and
not sent, 429 ``es_rejected_execution_exception`` while ``rejecting`` (searches, field caps and cat).
Every request is in ``calls``.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import encode_basic_auth, web

from incidentfox.emulators.es_catalog import CAT_COLUMNS, cat_row, cat_text, field_caps, index_mapping
from incidentfox.emulators.es_query import SearchError, search
from incidentfox.emulators.served import LoopbackEmulator

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class EsCall:
    method: str
    path: str
    body: Any
    status: int


def error_body(status: int, kind: str, reason: str, **extra: Any) -> web.Response:
    """ES's error shape: ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``."""
    cause = {"type": kind, "reason": reason, **extra}
    return web.json_response({"error": {"root_cause": [cause], **cause}, "status": status}, status=status)


def _cat_sort_key(column: str, numeric: bool) -> Callable[[Mapping[str, str]], Any]:
    """``_cat``'s ``s=column[:desc]``: numbers compare as numbers, the rest as text."""
    if numeric:
        return lambda row: int(row.get(column) or 0)
    return lambda row: row.get(column, "")


class ElasticsearchEmulator(LoopbackEmulator):
    """Search, bulk and cluster info on 127.0.0.1. Start with ``async with`` or ``start()``."""

    display_name = "Elasticsearch"

    def __init__(
        self,
        *,
        distribution: str = "elasticsearch",
        api_key: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.distribution = distribution
        self.api_key = api_key
        self.basic_auth = basic_auth
        super().__init__(host)
        self.rejecting = False
        """While true, every search, field caps or cat request answers 429
        ``es_rejected_execution_exception``."""
        self.indices: dict[str, list[dict[str, Any]]] = {}
        self.health: dict[str, str] = {}
        """An index's health in ``_cat/indices`` (green, yellow or red); green when not set."""
        self.mappings: dict[str, dict[str, str]] = {}
        """Explicit field types of an index (field → type), before dynamic mapping of its documents."""
        self.calls: list[EsCall] = []
        self._ids = 0

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/", self._info)
        app.router.add_post("/_bulk", self._bulk)
        app.router.add_post("/{index}/_bulk", self._bulk)
        app.router.add_post("/{index}/_doc", self._doc)
        app.router.add_route("*", "/{index}/_search", self._search)
        app.router.add_get("/_cat/indices", self._cat_indices)
        app.router.add_get("/_cat/indices/{index}", self._cat_indices)
        app.router.add_route("*", "/_field_caps", self._field_caps)
        app.router.add_route("*", "/{index}/_field_caps", self._field_caps)
        return app

    def integration_config(self, **overrides: Any) -> dict[str, Any]:
        """The team config section ``integrations.elasticsearch`` that points the toolset here."""
        settings: dict[str, Any] = {"url": self.url, "index": "logs-*"}
        if self.api_key:
            settings["api_key"] = self.api_key
        return {**settings, **overrides}

    def index(self, name: str, documents: Iterable[Mapping[str, Any]]) -> None:
        """Store documents in ``name`` as ``_bulk`` would."""
        stored = self.indices.setdefault(name, [])
        for document in documents:
            self._ids += 1
            stored.append({"_id": str(self._ids), "_source": dict(document)})

    @web.middleware
    async def _gate(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        raw = await request.read()
        body: Any = raw.decode("utf-8", "replace") if raw else request.query.get("source")
        if not self._authorized(request.headers.get("Authorization")):
            response: web.StreamResponse = error_body(
                401,
                "security_exception",
                f"missing authentication credentials for REST request [{request.path}]",
                header={"WWW-Authenticate": ['Basic realm="security" charset="UTF-8"', "ApiKey"]},
            )
        elif self.rejecting and self._rejectable(request.path):
            response = error_body(
                429,
                "es_rejected_execution_exception",
                "rejected execution of coordinating operation [shard_detail=[], search queue full]",
            )
        else:
            response = await handler(request)
        self.calls.append(EsCall(request.method, request.path, body, response.status))
        return response

    @staticmethod
    def _rejectable(path: str) -> bool:
        return path.endswith(("/_search", "/_field_caps")) or path.startswith("/_cat/")

    def _authorized(self, header: str | None) -> bool:
        allowed = []
        if self.api_key is not None:
            allowed.append(f"ApiKey {self.api_key}")
        if self.basic_auth is not None:
            allowed.append(encode_basic_auth(*self.basic_auth))
        return not allowed or header in allowed

    async def _info(self, request: web.Request) -> web.Response:
        version: dict[str, Any] = {"number": "8.13.4", "build_flavor": "default", "lucene_version": "9.10.0"}
        tagline = "You Know, for Search"
        if self.distribution == "opensearch":
            version = {"distribution": "opensearch", "number": "2.13.0", "lucene_version": "9.10.0"}
            tagline = "The OpenSearch Project: https://opensearch.org/"
        return web.json_response(
            {"name": "es-node-1", "cluster_name": "incidentfox", "version": version, "tagline": tagline}
        )

    def _resolve(self, pattern: str) -> list[str] | web.Response:
        names: list[str] = []
        for part in (p.strip() for p in pattern.split(",")):
            if "*" in part:
                names += [n for n in sorted(self.indices) if fnmatch.fnmatchcase(n, part)]
            elif part in self.indices or part == "_all":
                names += sorted(self.indices) if part == "_all" else [part]
            else:
                return error_body(
                    404,
                    "index_not_found_exception",
                    f"no such index [{part}]",
                    index=part,
                    **{"resource.type": "index_or_alias", "resource.id": part},
                )
        return list(dict.fromkeys(names))

    async def _search(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "POST"):
            return error_body(405, "illegal_argument_exception", f"Incorrect HTTP method [{request.method}]")
        names = self._resolve(request.match_info["index"])
        if isinstance(names, web.Response):
            return names
        raw = (await request.read()).decode("utf-8", "replace") or request.query.get("source") or "{}"
        try:
            body = json.loads(raw)
        except ValueError:
            return error_body(400, "parse_exception", "request body is required or not valid JSON")
        documents = [(name, doc) for name in names for doc in self.indices[name]]
        try:
            answer = search(body if isinstance(body, dict) else {}, documents)
        except SearchError as exc:
            return web.json_response(exc.body(), status=400)
        return web.json_response(answer)

    async def _cat_indices(self, request: web.Request) -> web.Response:
        names = self._resolve(request.match_info.get("index", "*"))
        if isinstance(names, web.Response):
            return names
        raw_bytes = request.query.get("bytes") == "b"
        rows = [cat_row(n, self.indices[n], self.health.get(n, "green"), raw_bytes) for n in names]
        columns = [c for c in request.query.get("h", "").split(",") if c] or list(CAT_COLUMNS)
        unknown = [c for c in columns if c not in CAT_COLUMNS]
        if unknown:
            return error_body(400, "illegal_argument_exception", f"Unknown column [{unknown[0]}]")
        for key in reversed([k for k in request.query.get("s", "").split(",") if k]):
            column, _, order = key.partition(":")
            numeric = column in ("docs.count", "docs.deleted") or (raw_bytes and column.endswith("size"))
            rows.sort(key=_cat_sort_key(column, numeric), reverse=order == "desc")
        rows = [{c: r[c] for c in columns} for r in rows]
        if request.query.get("format") == "json":
            return web.json_response(rows)
        verbose = request.query.get("v") in ("", "true")
        return web.Response(text=cat_text(rows, columns, verbose), content_type="text/plain")

    async def _field_caps(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "POST"):
            return error_body(405, "illegal_argument_exception", f"Incorrect HTTP method [{request.method}]")
        names = self._resolve(request.match_info.get("index", "_all"))
        if isinstance(names, web.Response):
            return names
        patterns = [f.strip() for f in request.query.get("fields", "").split(",") if f.strip()]
        if not patterns:
            return error_body(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: specifying fields is required;",
            )
        mappings = {n: index_mapping(self.indices[n], self.mappings.get(n)) for n in names}
        return web.json_response(field_caps(mappings, patterns))

    async def _doc(self, request: web.Request) -> web.Response:
        try:
            document = json.loads(await request.read())
        except ValueError:
            return error_body(400, "mapper_parsing_exception", "failed to parse")
        name = request.match_info["index"]
        self.index(name, [document])
        return web.json_response(
            {"_index": name, "_id": str(self._ids), "_version": 1, "result": "created"}, status=201
        )

    async def _bulk(self, request: web.Request) -> web.Response:
        lines = [line for line in (await request.read()).decode().splitlines() if line.strip()]
        items = []
        try:
            for action_line, source_line in zip(lines[::2], lines[1::2], strict=True):
                action, meta = next(iter(json.loads(action_line).items()))
                name = meta.get("_index") or request.match_info.get("index")
                if action not in ("index", "create") or not name:
                    raise ValueError(f"Malformed action/metadata line [{action_line}]")
                self.index(name, [json.loads(source_line)])
                items.append(
                    {action: {"_index": name, "_id": str(self._ids), "result": "created", "status": 201}}
                )
        except (ValueError, AttributeError, StopIteration) as exc:
            return error_body(400, "illegal_argument_exception", str(exc) or "The bulk request must end")
        return web.json_response({"took": 1, "errors": False, "items": items})
