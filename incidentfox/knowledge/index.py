"""A team's knowledge held in memory for search: a BM25 index and a matrix of passage embeddings.

Scoring is hybrid. BM25 (``bm25s``) ranks by the query's words, scaled to 0..1 by the best passage;
the cosine similarity of unit-length MiniLM embeddings ranks by meaning, so a paraphrase ("the
primary database ran out of connections") finds the runbook that says "Postgres max_connections
reached". The two are blended (``KEYWORD_WEIGHT``/``MEANING_WEIGHT``) when the query and the passage
both have a vector; otherwise the keyword score stands alone. Feedback on a past incident's RCA then
scales its score (``VOTE_UP``/``VOTE_DOWN``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import bm25s
import numpy as np
import numpy.typing as npt
from bm25s.stopwords import STOPWORDS_EN

from incidentfox.knowledge.embeddings import DIMENSIONS, Vectors

KEYWORD_WEIGHT = 0.35
MEANING_WEIGHT = 0.65
VOTE_UP = 1.25
"""Score factor of a past incident whose RCA got more 👍 than 👎."""
VOTE_DOWN = 0.6
"""Score factor of a past incident whose RCA got more 👎 than 👍."""

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(STOPWORDS_EN)
Scores = npt.NDArray[np.float32]


def tokens(text: str) -> list[str]:
    """Lower-case words without stop words, with common English suffixes cut so that "restarting",
    "restarted" and "restarts" meet."""
    found = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        found.append(word)
    return found


@dataclass(frozen=True, slots=True)
class Entry:
    """What a search result shows of a passage, without its vector."""

    passage_id: int
    kind: str
    source: str
    title: str
    section: str
    url: str | None
    text: str
    run_id: str | None
    happened_at: datetime | None


@dataclass(frozen=True, slots=True)
class Scored:
    entry: Entry
    score: float
    keyword: float
    meaning: float | None


class TeamIndex:
    """One team's passages, indexed for hybrid search. Built once per change of the team's knowledge."""

    def __init__(self, entries: Sequence[Entry], vectors: Sequence[Vectors | None]) -> None:
        self.entries = list(entries)
        corpus = [tokens(f"{e.title}\n{e.section}\n{e.text}") or [""] for e in self.entries]
        self._bm25: bm25s.BM25 | None = None
        if self.entries:
            self._bm25 = bm25s.BM25()
            self._bm25.index(corpus, show_progress=False)
        self._kinds = np.array([e.kind for e in self.entries], dtype=object)
        self._matrix = np.zeros((len(self.entries), DIMENSIONS), dtype=np.float32)
        self._has_vector = np.zeros(len(self.entries), dtype=bool)
        for row, vector in enumerate(vectors):
            if vector is not None:
                self._matrix[row] = vector
                self._has_vector[row] = True

    @property
    def vectors_missing(self) -> int:
        return int((~self._has_vector).sum())

    def keyword_scores(self, query: str) -> Scores:
        """BM25 of every passage scaled so the best is 1 (all 0 when no query word is in the corpus)."""
        raw = np.zeros(len(self.entries), dtype=np.float32)
        if self._bm25 is None:
            return raw
        ids = self._bm25.get_tokens_ids(tokens(query))
        if ids:
            raw = np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)
        best = float(raw.max(initial=0.0))
        return raw / best if best > 0 else raw

    def score(
        self,
        query: str,
        query_vector: Vectors | None,
        *,
        kinds: Sequence[str] | None = None,
        candidates: int = 50,
    ) -> list[Scored]:
        """The ``candidates`` best passages of the asked kinds with a score above zero, best first
        (before feedback, which the caller applies)."""
        keyword = self.keyword_scores(query)
        blended = keyword.copy()
        meaning: Scores | None = None
        if query_vector is not None and self._has_vector.any():
            meaning = np.clip(self._matrix @ query_vector, 0.0, 1.0).astype(np.float32)
            mixed = KEYWORD_WEIGHT * keyword + MEANING_WEIGHT * meaning
            blended = np.where(self._has_vector, mixed, keyword).astype(np.float32)
        if kinds:
            allowed = np.isin(self._kinds, list(kinds))
            blended = np.where(allowed, blended, 0.0).astype(np.float32)
        count = min(candidates, int((blended > 0).sum()))
        if count == 0:
            return []
        best = np.argpartition(-blended, count - 1)[:count]
        best = best[np.argsort(-blended[best], kind="stable")]
        return [
            Scored(
                self.entries[row],
                float(blended[row]),
                float(keyword[row]),
                float(meaning[row]) if meaning is not None and self._has_vector[row] else None,
            )
            for row in best
        ]


def feedback_factor(up: int, down: int) -> float:
    """How a past incident's votes scale its score: more 👍 ranks it higher, more 👎 lower."""
    if up > down:
        return VOTE_UP
    if down > up:
        return VOTE_DOWN
    return 1.0
