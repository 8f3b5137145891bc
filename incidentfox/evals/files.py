"""What every scenario reader shares: the error that names a file and a field, and reading YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ScenarioError(ValueError):
    """A scenario that cannot be read: which file, which field, and what is wrong with it."""

    def __init__(self, path: Path, field_name: str, problem: str) -> None:
        self.path = path
        self.field = field_name
        self.problem = problem
        super().__init__(f"{path}: {field_name}: {problem}")


def read_yaml(path: Path, what: str = "(file)") -> Any:
    """A YAML file's document; a ``ScenarioError`` naming the file when it is missing or not YAML."""
    if not path.is_file():
        raise ScenarioError(path, what, "file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(path, what, f"is not valid YAML{where}") from None
