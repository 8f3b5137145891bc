"""One golden-file check for every renderer test: compare with ``tests/golden/<dir>/<name>.json``.

After an intended rendering change, regenerate with ``UPDATE_GOLDENS=1 pytest <test file>`` and
review the JSON diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

GOLDEN_ROOT = Path(__file__).parent / "golden"


def assert_matches_golden(directory: str, name: str, rendered: Any) -> None:
    path = GOLDEN_ROOT / directory / f"{name}.json"
    serialized = json.dumps(rendered, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDENS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(serialized, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with UPDATE_GOLDENS=1 to create it"
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(serialized)
