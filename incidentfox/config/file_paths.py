"""File paths in config: only from the global admin, and only under the installation's directory.

A path in config (``integrations.kubernetes.kubeconfig``, ``ca_cert``, any ``*_path`` or ``*_file``)
is read by the IncidentFox process, so whoever sets it chooses a file on the host. Only the global
admin may, and only below ``CONFIG_FILES_DIR`` (unset: no path is accepted from anyone). Org admins
give the contents instead (``kubeconfig_content``, ``ca_cert_content``), which are stored encrypted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from incidentfox.config.permissions import Principal
from incidentfox.errors import BadRequest, Forbidden

CONFIG_FILES_DIR_SETTING = "CONFIG_FILES_DIR"
_FILE_PATH_KEY = re.compile(r"(?i)^(kubeconfig|ca_cert)$|[_\-.](path|file)$")


def is_file_path_key(key: str) -> bool:
    return _FILE_PATH_KEY.search(key) is not None


def require_file_paths_allowed(
    principal: Principal, proposed: Any, current: Any, files_dir: Path | None
) -> None:
    """Refuse a written file path that is new or changed, unless the global admin wrote it below
    ``files_dir``. Paths already stored (and sent back unchanged) are left alone."""
    for path, value in _changed_file_paths(proposed, current):
        dotted = ".".join(path)
        if principal.kind != "admin" or principal.slack_actor:
            raise Forbidden(
                f"only the installation's global admin can set a file path (`{dotted}`); "
                f"give the file's contents instead, in `{_content_key(path)}`"
            )
        if files_dir is None:
            raise BadRequest(
                f"this installation accepts no file paths in config (`{dotted}`): "
                f"{CONFIG_FILES_DIR_SETTING} is not set; give the contents in `{_content_key(path)}`",
                code="file_path_not_allowed",
            )
        if not _is_under(value, files_dir):
            raise BadRequest(
                f"`{dotted}` must be an absolute path under {CONFIG_FILES_DIR_SETTING} ({files_dir})",
                code="file_path_not_allowed",
            )


def _changed_file_paths(
    proposed: Any, current: Any, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    if not isinstance(proposed, dict):
        return
    current_map = current if isinstance(current, dict) else {}
    for key, value in proposed.items():
        path = (*prefix, str(key))
        if isinstance(value, dict):
            yield from _changed_file_paths(value, current_map.get(key), path)
        elif (
            isinstance(value, str) and value and is_file_path_key(str(key)) and value != current_map.get(key)
        ):
            yield path, value


def _content_key(path: tuple[str, ...]) -> str:
    stem = re.sub(r"(?i)[_\-.](path|file)$", "", path[-1])
    return ".".join((*path[:-1], f"{stem}_content"))


def _is_under(value: str, files_dir: Path) -> bool:
    if not os.path.isabs(value):
        return False
    root = os.path.realpath(files_dir)
    return os.path.commonpath([root, os.path.realpath(value)]) == root
