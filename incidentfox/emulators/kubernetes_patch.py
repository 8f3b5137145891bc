"""The three PATCH formats of the Kubernetes API, applied the way the API server applies them.

* ``application/json-patch+json``: RFC 6902 operations (a JSON list), applied with ``jsonpatch``.
  A malformed operation is 400; one that cannot be applied (a failed ``test``, a missing path) is
  422, as in the API server.
* ``application/merge-patch+json``: RFC 7386; objects merge and ``null`` deletes a key.
* ``application/strategic-merge-patch+json``: like a merge patch, except that lists of named things
  (containers, env, volumes…) merge by their key instead of being replaced, and the ``$patch``
  directive (``delete``, ``replace``) is honoured. ``$setElementOrder/…`` and ``$retainKeys`` only
  steer ordering and pruning in the API server; they are accepted and dropped.

The kubernetes Python client sends a dict body as a strategic merge patch and a list body as a JSON
patch; ``_content_type`` picks another format.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

import jsonpatch
import jsonpointer

from incidentfox.config.merge import merge_patch

PatchType = Literal["strategic", "merge", "json"]
PATCH_TYPES: dict[str, PatchType] = {
    "application/strategic-merge-patch+json": "strategic",
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
}
_ACCEPTED = (
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
    "application/strategic-merge-patch+json"
)
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
}
"""``patchMergeKey`` of the list fields of pod templates and object metadata (from the API types)."""

_IGNORED_DIRECTIVES = ("$setElementOrder/", "$retainKeys", "$deleteFromPrimitiveList/")


class PatchRejected(Exception):
    """The API server's refusal: an HTTP status code, a ``Status`` reason and its message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


def parse_patch(content_type: str, raw: bytes) -> tuple[PatchType, Any]:
    """The patch format and the decoded body; 415 for a format we do not apply, 400 for bad JSON."""
    media = content_type.split(";", 1)[0].strip().lower()
    kind = PATCH_TYPES.get(media)
    if kind is None:
        if media == "application/apply-patch+yaml":
            message = "server-side apply is not supported by the IncidentFox emulator"
        else:
            message = "the body of the request was in an unknown format - accepted media types include: "
            message += _ACCEPTED
        raise PatchRejected(415, "UnsupportedMediaType", message)
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise PatchRejected(400, "BadRequest", f"error decoding patch: {exc}") from exc
    if kind == "json" and not isinstance(body, list):
        raise PatchRejected(
            400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    if kind == "strategic" and not isinstance(body, dict):
        raise PatchRejected(
            400, "BadRequest", "json: cannot unmarshal array into Go value of type map[string]interface {}"
        )
    return kind, body


def apply_patch(kind: PatchType, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """``target`` with ``patch`` applied (``target`` is not changed)."""
    if kind == "json":
        try:
            patched = jsonpatch.apply_patch(target, patch, in_place=False)
        except jsonpatch.InvalidJsonPatch as exc:
            raise PatchRejected(400, "BadRequest", str(exc)) from exc
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError) as exc:
            raise PatchRejected(422, "", str(exc)) from exc
    elif kind == "merge":
        patched = merge_patch(target, patch)
    else:
        patched = strategic_merge(target, patch)
    if not isinstance(patched, dict):
        raise PatchRejected(422, "", "the patch does not leave an object")
    return patched


def strategic_merge(target: Any, patch: Any) -> Any:
    """A strategic merge patch of ``patch`` onto ``target`` (neither is changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key == "$patch" or key.startswith(_IGNORED_DIRECTIVES):
            continue
        if value is None:
            result.pop(key, None)
        elif key in MERGE_KEYS and isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, MERGE_KEYS[key])
        else:
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    """Items with the same merge key merge; ``{"$patch": "delete"}`` removes one; new items append."""
    merged = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            merged.append(copy.deepcopy(item))
            continue
        index = next(
            (i for i, old in enumerate(merged) if isinstance(old, dict) and old.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            merged[index] = strategic_merge(merged[index], item)
    return merged
