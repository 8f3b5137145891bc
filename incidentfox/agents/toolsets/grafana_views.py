"""Pure functions for the grafana toolset: Grafana's answers as the compact rows the tools return, the
template variables of a dashboard substituted into its queries as Grafana does, data frames turned into
the series of ``prometheus_views.range_data``, and links back to Grafana.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from incidentfox.agents.toolsets.prometheus_views import Row, capped, iso, short

ALL = "$__all"
QUERY_KEYS = ("expr", "query", "rawSql", "target", "expression", "rawQuery")
"""Where a query's text is, by data source type: PromQL and LogQL in ``expr``, SQL in ``rawSql``…"""
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]")
_INTERNAL = re.compile(r"^__\w+__$")
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|{}\[\]']")
MAX_QUERIES_SHOWN = 5


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def dashboard_url(
    base: str,
    uid: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    panel_id: int | None = None,
    variables: Mapping[str, list[str]] | None = None,
) -> str:
    """The dashboard at ``/d/{uid}``, over the window and with the variables when given."""
    params: list[tuple[str, str]] = []
    if start is not None and end is not None:
        params += [("from", str(ms(start))), ("to", str(ms(end)))]
    if panel_id is not None:
        params.append(("viewPanel", str(panel_id)))
    for name, values in (variables or {}).items():
        params += [(f"var-{name}", v) for v in values]
    query = f"?{urlencode(params, quote_via=quote)}" if params else ""
    return f"{base}/d/{quote(uid, safe='')}{query}"


def explore_url(base: str, datasource: Mapping[str, Any], query: Row, start: datetime, end: datetime) -> str:
    """Grafana Explore with ``query`` on ``datasource`` (``{"uid", "type"}``) over the window."""
    pane = {
        "datasource": datasource.get("uid"),
        "queries": [{**query, "datasource": {"type": datasource.get("type"), "uid": datasource.get("uid")}}],
        "range": {"from": str(ms(start)), "to": str(ms(end))},
    }
    panes = json.dumps({"incidentfox": pane}, separators=(",", ":"))
    return f"{base}/explore?schemaVersion=1&panes={quote(panes, safe='')}"


def search_rows(found: Any, base: str) -> list[Row]:
    return [
        {
            "title": hit.get("title"),
            "uid": hit.get("uid"),
            "folder": hit.get("folderTitle") or "General",
            "tags": list(hit.get("tags") or []),
            "url": f"{base}{hit.get('url') or '/d/' + str(hit.get('uid'))}",
        }
        for hit in found or []
        if isinstance(hit, Mapping) and hit.get("type", "dash-db") == "dash-db"
    ]


def all_panels(dashboard: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every panel, including those inside collapsed rows (which keep theirs under ``panels``)."""
    panels: list[Mapping[str, Any]] = []
    for panel in dashboard.get("panels") or []:
        if not isinstance(panel, Mapping):
            continue
        if panel.get("type") == "row":
            panels.extend(p for p in panel.get("panels") or [] if isinstance(p, Mapping))
        else:
            panels.append(panel)
    return panels


def query_text(target: Mapping[str, Any]) -> str:
    return next((str(target[k]) for k in QUERY_KEYS if isinstance(target.get(k), str) and target[k]), "")


def datasource_ref(raw: Any) -> Row:
    """A panel's or target's data source as ``{"uid", "type"}``; an old dashboard names it by text."""
    if isinstance(raw, Mapping):
        return {"uid": raw.get("uid"), "type": raw.get("type")}
    if isinstance(raw, str) and raw:
        return {"uid": raw, "type": None}
    return {"uid": None, "type": None}


def targets(panel: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in panel.get("targets") or [] if isinstance(t, Mapping) and not t.get("hide")]


def panel_row(panel: Mapping[str, Any]) -> Row:
    found = targets(panel)
    ds = datasource_ref(panel.get("datasource"))
    row: Row = {
        "id": panel.get("id"),
        "title": panel.get("title") or "",
        "type": panel.get("type"),
        "datasource": ds["uid"],
        "queries": [
            {"refId": t.get("refId"), "query": short(query_text(t), 500)} for t in found[:MAX_QUERIES_SHOWN]
        ],
    }
    if len(found) > MAX_QUERIES_SHOWN:
        row["queries_omitted"] = len(found) - MAX_QUERIES_SHOWN
    return row


def _current(variable: Mapping[str, Any]) -> list[str]:
    current = variable.get("current") or {}
    value = current.get("value") if isinstance(current, Mapping) else None
    if value is None and variable.get("type") == "constant":
        value = variable.get("query")
    if value is None:
        options = variable.get("options") or []
        value = options[0].get("value") if options and isinstance(options[0], Mapping) else None
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def variable_rows(dashboard: Mapping[str, Any]) -> list[Row]:
    rows = []
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if not isinstance(variable, Mapping) or not variable.get("name"):
            continue
        row: Row = {"name": variable["name"], "type": variable.get("type"), "current": _current(variable)}
        if variable.get("multi"):
            row["multi"] = True
        options = [str(o.get("value")) for o in variable.get("options") or [] if isinstance(o, Mapping)]
        if options:
            row["options"] = options[:20]
        rows.append(row)
    return rows


def variable_values(dashboard: Mapping[str, Any], given: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Each dashboard variable's values: those ``given``, else its current (or first) value; ``All``
    becomes the variable's custom all value or every option."""
    values: dict[str, list[str]] = {}
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if not isinstance(variable, Mapping) or not variable.get("name"):
            continue
        name = str(variable["name"])
        chosen = list(given.get(name) or _current(variable))
        if chosen == [ALL] or (chosen == ["All"] and variable.get("includeAll")):
            chosen = (
                [str(variable["allValue"])]
                if variable.get("allValue")
                else [
                    str(o.get("value"))
                    for o in variable.get("options") or []
                    if isinstance(o, Mapping) and o.get("value") not in (ALL, None)
                ]
                or [".*"]
            )
        values[name] = chosen
    return {**{k: list(v) for k, v in given.items() if k not in values}, **values}


def regex_escaped(value: str) -> str:
    """``value`` as a literal inside a regex inside a PromQL or LogQL string, as Grafana escapes it:
    ``a.b`` → ``a\\.b`` (the string's escape, then the regex's)."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" * 4 if m.group(0) == "\\" else "\\\\" + m.group(0), value)


def _formatted(values: list[str], form: str | None) -> str:
    if form in ("csv", "raw"):
        return ",".join(values)
    if form == "pipe":
        return "|".join(values)
    if form == "regex" or len(values) > 1:
        return "(" + "|".join(regex_escaped(v) for v in values) + ")"
    return values[0] if values else ""


def interpolate(
    text: str, values: Mapping[str, list[str]], builtins: Mapping[str, str]
) -> tuple[str, set[str]]:
    """``text`` with ``$var``, ``${var}``, ``${var:format}`` and ``[[var]]`` replaced as Grafana does for
    Prometheus and Loki (several values become the regex ``(a|b)``), and the names it could not replace."""
    unknown: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        form = match.group(3) or match.group(5)
        if name in builtins:
            return builtins[name]
        if name in values:
            return _formatted(values[name], form)
        if not name[0].isdigit():  # $1 is a regex group reference (label_replace), not a variable
            unknown.add(name)
        return match.group(0)

    return _VARIABLE.sub(replace, text), unknown


def interpolated(
    node: Any, values: Mapping[str, list[str]], builtins: Mapping[str, str], unknown: set[str]
) -> Any:
    """Every text inside ``node`` (a target, a data source reference) interpolated."""
    if isinstance(node, str):
        text, missing = interpolate(node, values, builtins)
        unknown |= missing
        return text
    if isinstance(node, Mapping):
        return {k: interpolated(v, values, builtins, unknown) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolated(v, values, builtins, unknown) for v in node]
    return node


def frame_series(frames: Sequence[Any]) -> list[Row]:
    """Data frames (``schema.fields`` and ``data.values``) as the ``[{"metric", "values"}]`` of a
    Prometheus matrix: one series per number field, named by its labels (and its name when it is not
    the generic ``Value``)."""
    found: list[Row] = []
    for frame in frames:
        fields = ((frame or {}).get("schema") or {}).get("fields") or []
        columns = ((frame or {}).get("data") or {}).get("values") or []
        times = next(
            (columns[i] for i, f in enumerate(fields) if f.get("type") == "time" and i < len(columns)), None
        )
        if times is None:
            continue
        for i, field in enumerate(fields):
            if field.get("type") != "number" or i >= len(columns):
                continue
            labels = {str(k): str(v) for k, v in (field.get("labels") or {}).items()}
            name = str(field.get("name") or "")
            if name and name.lower() != "value" and "__name__" not in labels:
                labels["__name__"] = name
            points = [[t / 1000, v] for t, v in zip(times, columns[i], strict=False) if v is not None]
            found.append({"metric": labels, "values": points})
    return found


def annotation_row(found: Mapping[str, Any]) -> Row:
    row: Row = {"time": iso(float(found.get("time") or 0) / 1000), "text": short(found.get("text"), 500)}
    end = found.get("timeEnd")
    if end and end != found.get("time"):
        row["time_end"] = iso(float(end) / 1000)
    row["tags"] = list(found.get("tags") or [])
    if found.get("dashboardUID"):
        row["dashboard_uid"] = found["dashboardUID"]
    if found.get("panelId"):
        row["panel_id"] = found["panelId"]
    if found.get("login"):
        row["by"] = found["login"]
    return row


def annotations_data(found: Any, *, limit: int, cap: int) -> Row:
    rows = sorted(
        (annotation_row(a) for a in found or [] if isinstance(a, Mapping)),
        key=lambda r: r["time"],
        reverse=True,
    )
    data: Row = {"count": len(rows)}
    if len(rows) >= limit:
        data["note"] = f"Stopped at the limit of {limit}; older annotations of the window are not shown."
    return capped(data, "annotations", rows, cap, "narrow with tags or a shorter window")


def datasource_row(found: Mapping[str, Any]) -> Row:
    """Name, uid, type and URL only: never credentials, ``secureJsonFields`` or ``jsonData``."""
    row: Row = {
        "name": found.get("name"),
        "uid": found.get("uid"),
        "type": found.get("type"),
        "url": found.get("url") or None,
    }
    if found.get("isDefault"):
        row["default"] = True
    interval = (found.get("jsonData") or {}).get("timeInterval")
    if interval:
        row["scrape_interval"] = str(interval)
    return row


def alert_row(alert: Mapping[str, Any], base: str) -> Row:
    """An Alertmanager v2 alert: its name and own labels and annotations, without Grafana's internal
    ``__x__`` keys (those that point to a dashboard panel become ``dashboard_uid`` and ``panel_id``)."""
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items() if not _INTERNAL.match(str(k))}
    annotations = alert.get("annotations") or {}
    row: Row = {
        "alertname": labels.pop("alertname", None),
        "starts_at": alert.get("startsAt"),
        "labels": labels,
        "annotations": {str(k): short(v) for k, v in annotations.items() if not _INTERNAL.match(str(k))},
    }
    if annotations.get("__value_string__"):
        row["values"] = short(annotations["__value_string__"])
    if annotations.get("__dashboardUid__"):
        row["dashboard_uid"] = annotations["__dashboardUid__"]
        row["panel_id"] = annotations.get("__panelId__")
    link = str(alert.get("generatorURL") or "")
    if link:
        row["generator_url"] = f"{base}{link}" if link.startswith("/") else link
    return row
