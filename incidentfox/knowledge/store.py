"""The knowledge base of each team: runbooks uploaded through the config API and every finished
investigation's RCA, searched by BM25 and embeddings together.

Reads and writes go through the project's database (``knowledge_passages``). A team's passages are
indexed in memory on first search and kept until the team's knowledge changes: each search asks the
database one cheap question (how many passages, the newest change) to know whether its index is still
current. Finished runs join the knowledge base by themselves: every search (and ``similar_incidents``)
first takes in the team's runs that finished with an RCA since, so nothing needs to be called when a
run ends; ``record_run`` does it at once for a caller that wants it. Feedback (👍/👎 in
``run_feedback``) is read at search time, so a vote given after the run ended counts at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.agents.runs.models import Run, RunFeedback
from incidentfox.db.base import utcnow
from incidentfox.db.engine import SessionFactory
from incidentfox.knowledge.embeddings import Embedder, EmbeddingState, from_bytes, to_bytes
from incidentfox.knowledge.incidents import IncidentPassage, incident_passage
from incidentfox.knowledge.index import Entry, Scored, TeamIndex, feedback_factor
from incidentfox.knowledge.models import KnowledgePassage
from incidentfox.knowledge.runbooks import Runbook, UnreadableRunbook, checked_path, decoded, parse_runbook

log = logging.getLogger(__name__)

CACHED_TEAMS = 64
SYNC_BATCH = 200
"""At most this many newly finished runs are taken in per search; the rest come with the next ones."""
MIN_SCORE = 0.2
"""Below this blended score a passage is not worth showing the model."""
SIMILAR_MIN = 0.3
"""A past incident is offered as similar when the meaning of its RCA is at least this close to the
question (cosine of the embeddings; MiniLM puts unrelated texts below about 0.2), or, with BM25 alone,
when its score is."""
EMBED_BATCH = 256


@dataclass(frozen=True, slots=True)
class TeamKey:
    """Whose knowledge: the team's org and node ids."""

    org_id: str
    team_node_id: str


@dataclass(frozen=True, slots=True)
class KnowledgeHit:
    """One search result and where it comes from: the runbook's path and section, or the past
    incident's thread (``url``) and its feedback."""

    kind: str
    title: str
    source: str
    section: str
    url: str | None
    text: str
    score: float
    keyword: float
    meaning: float | None
    run_id: str | None = None
    happened_at: datetime | None = None
    votes_up: int = 0
    votes_down: int = 0

    @property
    def citation(self) -> str:
        """How an answer cites it: ``runbook runbooks/pg.md § Failover`` or ``past incident <url>``."""
        if self.kind == "runbook":
            return f"runbook {self.source}" + (f" § {self.section}" if self.section else "")
        return f"past incident {self.url or 'run ' + self.source}"


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    hits: list[KnowledgeHit]
    mode: str
    """``hybrid`` (BM25 and embeddings) or ``keyword`` (BM25 only: the model could not load)."""
    searched: int
    """How many passages the team's knowledge holds."""


@dataclass(frozen=True, slots=True)
class AddedRunbook:
    path: str
    title: str
    passages: int


@dataclass(frozen=True, slots=True)
class SkippedDocument:
    path: str
    reason: str


@dataclass(slots=True)
class UploadReport:
    added: list[AddedRunbook] = field(default_factory=list)
    skipped: list[SkippedDocument] = field(default_factory=list)


class KnowledgeBase:
    """Each team's runbooks and past incidents: add, list, remove and search them."""

    def __init__(self, sessions: SessionFactory, embedder: Embedder | None = None) -> None:
        self.sessions = sessions
        self.embedder = embedder or Embedder()
        self._indexes: OrderedDict[TeamKey, tuple[tuple[Any, ...], TeamIndex]] = OrderedDict()
        self._locks: dict[TeamKey, asyncio.Lock] = {}

    @property
    def embeddings(self) -> EmbeddingState:
        return self.embedder.state

    async def add_runbooks(
        self,
        team: TeamKey,
        documents: Sequence[tuple[object, object]],
        *,
        urls: Mapping[str, str] | None = None,
    ) -> UploadReport:
        """Add or replace each ``(path, content)``; a document that cannot be read is skipped and
        reported with the reason, the others are still added. ``content`` is text or raw bytes;
        ``urls`` links a path to where people read it (a ``url:`` in its front matter wins)."""
        report = UploadReport()
        for path, content in documents:
            try:
                runbook = self.read_runbook(path, content)
            except UnreadableRunbook as exc:
                shown = path if isinstance(path, str) else ""
                report.skipped.append(SkippedDocument(path=shown[:300], reason=str(exc)))
                continue
            if runbook.url is None and urls and runbook.path in urls:
                runbook = dataclasses.replace(runbook, url=urls[runbook.path])
            await self._store_runbook(team, runbook)
            report.added.append(AddedRunbook(runbook.path, runbook.title, len(runbook.passages)))
        return report

    @staticmethod
    def read_runbook(path: object, content: object) -> Runbook:
        """The runbook parsed, or ``UnreadableRunbook`` saying why it cannot be."""
        where = checked_path(path)
        if isinstance(content, bytes):
            text = decoded(content)
        elif isinstance(content, str):
            text = content
        else:
            raise UnreadableRunbook("give the runbook's markdown as a string in 'content'")
        return parse_runbook(where, text)

    async def _store_runbook(self, team: TeamKey, runbook: Runbook) -> None:
        texts = [f"{runbook.title}\n{p.section}\n{p.text}" for p in runbook.passages]
        vectors = await self.embedder.vectors(texts)
        now = utcnow()
        rows = [
            KnowledgePassage(
                org_id=team.org_id,
                team_node_id=team.team_node_id,
                kind="runbook",
                source=runbook.path,
                chunk=number,
                title=runbook.title,
                section=passage.section[:500],
                url=runbook.url,
                text=passage.text,
                embedding=to_bytes(vectors[number]) if vectors is not None else None,
                embedding_model=self.embedder.name if vectors is not None else None,
                updated_at=now,
            )
            for number, passage in enumerate(runbook.passages)
        ]
        async with self.sessions.begin() as session:
            await session.execute(_of_source(team, "runbook", runbook.path))
            session.add_all(rows)

    async def remove_runbook(self, team: TeamKey, path: str) -> bool:
        async with self.sessions.begin() as session:
            result = await session.execute(_of_source(team, "runbook", checked_path(path)))
        return bool(getattr(result, "rowcount", 0))

    async def remove_runbooks_under(self, team: TeamKey, prefix: str, *, keep: Sequence[str]) -> list[str]:
        """Remove the runbooks whose path starts with ``prefix`` except ``keep``; the paths removed."""
        p = KnowledgePassage
        mine = (p.org_id == team.org_id, p.team_node_id == team.team_node_id, p.kind == "runbook")
        async with self.sessions.begin() as session:
            sources = (await session.scalars(select(p.source).where(*mine).distinct())).all()
            gone = sorted(s for s in sources if s.startswith(prefix) and s not in set(keep))
            if gone:
                await session.execute(delete(p).where(*mine, p.source.in_(gone)))
        return gone

    async def documents(self, team: TeamKey) -> list[dict[str, Any]]:
        """Each runbook and past incident once: kind, source, title, url, passages, updated_at."""
        p = KnowledgePassage
        statement = (
            select(p.kind, p.source, func.min(p.title), func.min(p.url), func.count(), func.max(p.updated_at))
            .where(p.org_id == team.org_id, p.team_node_id == team.team_node_id)
            .group_by(p.kind, p.source)
            .order_by(p.kind.desc(), p.source)
        )
        async with self.sessions() as session:
            rows = (await session.execute(statement)).all()
        return [
            {
                "kind": kind,
                "source": source,
                "title": title,
                "url": url,
                "passages": count,
                "updated_at": updated.isoformat() if isinstance(updated, datetime) else str(updated),
            }
            for kind, source, title, url, count, updated in rows
        ]

    async def record_run(self, run: Run) -> bool:
        """Add a finished run's RCA (again, replacing an earlier copy); false when it has none."""
        passage = incident_passage(run)
        if passage is None:
            return False
        await self._store_incidents(TeamKey(run.org_id, run.team_node_id), [passage])
        return True

    async def sync_incidents(self, team: TeamKey) -> int:
        """Take in the team's runs that finished with an RCA and are not in its knowledge yet."""
        known = exists().where(
            KnowledgePassage.org_id == Run.org_id,
            KnowledgePassage.team_node_id == Run.team_node_id,
            KnowledgePassage.kind == "incident",
            KnowledgePassage.source == Run.run_id,
        )
        statement = (
            select(Run)
            .where(
                Run.org_id == team.org_id,
                Run.team_node_id == team.team_node_id,
                Run.status == "succeeded",
                func.coalesce(cast(Run.rca, Text), "null") != "null",
                ~known,
            )
            .order_by(Run.finished_at)
            .limit(SYNC_BATCH)
        )
        async with self.sessions() as session:
            runs = (await session.scalars(statement)).all()
        passages = [p for p in (incident_passage(run) for run in runs) if p is not None]
        if passages:
            await self._store_incidents(team, passages)
        return len(passages)

    async def _store_incidents(self, team: TeamKey, passages: Sequence[IncidentPassage]) -> None:
        vectors = await self.embedder.vectors([f"{p.title}\n{p.text}" for p in passages])
        now = utcnow()
        async with self.sessions.begin() as session:
            for number, passage in enumerate(passages):
                await session.execute(_of_source(team, "incident", passage.run_id))
                session.add(
                    KnowledgePassage(
                        org_id=team.org_id,
                        team_node_id=team.team_node_id,
                        kind="incident",
                        source=passage.run_id,
                        chunk=0,
                        title=passage.title,
                        section="",
                        url=passage.url,
                        text=passage.text,
                        run_id=passage.run_id,
                        happened_at=passage.happened_at,
                        embedding=to_bytes(vectors[number]) if vectors is not None else None,
                        embedding_model=self.embedder.name if vectors is not None else None,
                        updated_at=now,
                    )
                )

    async def search(
        self, team: TeamKey, query: str, *, kinds: Sequence[str] | None = None, limit: int = 5
    ) -> SearchOutcome:
        """The ``limit`` best passages for ``query`` (runbooks and past incidents unless ``kinds``
        narrows it), past incidents ranked up or down by their RCA's feedback."""
        await self.sync_incidents(team)
        index = await self._index(team)
        query_vector = None
        vectors = await self.embedder.vectors([query])
        if vectors is not None:
            query_vector = vectors[0]
        mode = "hybrid" if query_vector is not None else "keyword"
        scored = index.score(query, query_vector, kinds=kinds, candidates=max(50, limit * 10))
        votes = await self._votes([s.entry.run_id for s in scored if s.entry.run_id])
        hits = [_hit(s, votes.get(s.entry.run_id or "", (0, 0))) for s in scored]
        hits = [h for h in hits if h.score >= MIN_SCORE]
        hits.sort(key=lambda h: h.score, reverse=True)
        return SearchOutcome(hits=hits[:limit], mode=mode, searched=len(index.entries))

    async def similar_incidents(self, team: TeamKey, question: str, limit: int = 3) -> list[KnowledgeHit]:
        """The past incidents closest to ``question`` (at most ``limit``, each clearly related), best
        first, for the start of a run: the live message links them and the model reads them."""
        if not question.strip():
            return []
        found = await self.search(team, question, kinds=("incident",), limit=limit)
        return [
            hit
            for hit in found.hits
            if (hit.meaning if hit.meaning is not None else hit.score) >= SIMILAR_MIN
        ]

    async def _votes(self, run_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        if not run_ids:
            return {}
        statement = (
            select(RunFeedback.run_id, RunFeedback.vote, func.count())
            .where(RunFeedback.run_id.in_(set(run_ids)))
            .group_by(RunFeedback.run_id, RunFeedback.vote)
        )
        async with self.sessions() as session:
            rows = (await session.execute(statement)).all()
        votes: dict[str, tuple[int, int]] = {}
        for run_id, vote, count in rows:
            up, down = votes.get(run_id, (0, 0))
            votes[run_id] = (
                (up + count, down) if vote == "up" else (up, down + (count if vote == "down" else 0))
            )
        return votes

    async def _index(self, team: TeamKey) -> TeamIndex:
        lock = self._locks.setdefault(team, asyncio.Lock())
        async with lock:
            async with self.sessions() as session:
                generation = await _generation(session, team)
            cached = self._indexes.get(team)
            if cached is not None and cached[0] == generation:
                self._indexes.move_to_end(team)
                return cached[1]
            await self._embed_missing(team)
            async with self.sessions() as session:
                generation = await _generation(session, team)
                rows = (await session.scalars(_team_rows(team))).all()
            index = await asyncio.to_thread(_build_index, rows, self.embedder.name)
            self._indexes[team] = (generation, index)
            self._indexes.move_to_end(team)
            while len(self._indexes) > CACHED_TEAMS:
                self._indexes.popitem(last=False)
            return index

    async def _embed_missing(self, team: TeamKey) -> None:
        """Embed passages stored while the model could not load (or by another model), when it can now."""
        if not await self.embedder.load():
            return
        p = KnowledgePassage
        missing = (
            select(p.passage_id, p.title, p.section, p.text)
            .where(p.org_id == team.org_id, p.team_node_id == team.team_node_id)
            .where((p.embedding_model.is_(None)) | (p.embedding_model != self.embedder.name))
            .limit(EMBED_BATCH * 8)
        )
        async with self.sessions() as session:
            rows = (await session.execute(missing)).all()
        for start in range(0, len(rows), EMBED_BATCH):
            batch = rows[start : start + EMBED_BATCH]
            vectors = await self.embedder.vectors([f"{t}\n{s}\n{x}" for _, t, s, x in batch])
            if vectors is None:
                return
            async with self.sessions.begin() as session:
                for (passage_id, *_), vector in zip(batch, vectors, strict=True):
                    row = await session.get(KnowledgePassage, passage_id)
                    if row is not None:
                        row.embedding, row.embedding_model = to_bytes(vector), self.embedder.name
                        row.updated_at = utcnow()


def _of_source(team: TeamKey, kind: str, source: str) -> Any:
    p = KnowledgePassage
    return delete(p).where(
        p.org_id == team.org_id, p.team_node_id == team.team_node_id, p.kind == kind, p.source == source
    )


def _team_rows(team: TeamKey) -> Any:
    p = KnowledgePassage
    return (
        select(p).where(p.org_id == team.org_id, p.team_node_id == team.team_node_id).order_by(p.passage_id)
    )


async def _generation(session: AsyncSession, team: TeamKey) -> tuple[Any, ...]:
    """Changes whenever a passage of the team is added, replaced or removed."""
    p = KnowledgePassage
    row = (
        await session.execute(
            select(func.count(), func.max(p.passage_id), func.max(p.updated_at)).where(
                p.org_id == team.org_id, p.team_node_id == team.team_node_id
            )
        )
    ).one()
    return tuple(row)


def _build_index(rows: Sequence[KnowledgePassage], model: str) -> TeamIndex:
    entries = [
        Entry(
            passage_id=row.passage_id,
            kind=row.kind,
            source=row.source,
            title=row.title,
            section=row.section,
            url=row.url,
            text=row.text,
            run_id=row.run_id,
            happened_at=row.happened_at,
        )
        for row in rows
    ]
    vectors = [
        from_bytes(row.embedding) if row.embedding is not None and row.embedding_model == model else None
        for row in rows
    ]
    return TeamIndex(entries, vectors)


def _hit(scored: Scored, votes: tuple[int, int]) -> KnowledgeHit:
    entry = scored.entry
    up, down = votes
    factor = feedback_factor(up, down) if entry.kind == "incident" else 1.0
    return KnowledgeHit(
        kind=entry.kind,
        title=entry.title,
        source=entry.source,
        section=entry.section,
        url=entry.url,
        text=entry.text,
        score=round(scored.score * factor, 4),
        keyword=round(scored.keyword, 4),
        meaning=round(scored.meaning, 4) if scored.meaning is not None else None,
        run_id=entry.run_id,
        happened_at=entry.happened_at,
        votes_up=up,
        votes_down=down,
    )
