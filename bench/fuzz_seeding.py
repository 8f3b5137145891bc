"""Make a seeded fuzz run depend on its seed alone.

Hypothesis mixes into generation the constants it finds in every module of the project that is
imported (``hypothesis.internal.conjecture.providers._get_local_constants``). With it, the same
seed generates other requests whenever any source file gains or loses a string, or when an earlier
test imported other modules first: a seeded run can neither be reproduced from its seed nor compared
with the last one. While this context is active the pool of local constants is empty.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from unittest import mock

from hypothesis.internal.conjecture import providers
from hypothesis.internal.constants_ast import Constants


@contextlib.contextmanager
def generation_from_seed_only() -> Iterator[None]:
    with mock.patch.object(providers, "_get_local_constants", Constants):
        yield
