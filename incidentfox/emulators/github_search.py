"""Code search for the GitHub emulator (``GET /search/code``).

The index is every file of every repository's default branch. A query is search terms (all must
occur, case-insensitively; quote a phrase) plus GitHub's qualifiers ``repo:``, ``org:``, ``user:``,
``path:``, ``filename:``, ``extension:``, ``language:`` and ``in:path``. A query with no term is
refused with 422, as GitHub refuses it. With ``Accept: application/vnd.github.v3.text-match+json``
each item carries ``text_matches``: a fragment around the first hit with the matches' indices.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from incidentfox.emulators import github_render as render
from incidentfox.emulators.github_models import Repo
from incidentfox.emulators.github_render import Obj, Urls
from incidentfox.emulators.github_store import GitHubWorld

QUALIFIERS = frozenset({"repo", "org", "user", "path", "filename", "extension", "language", "in"})
_LANGUAGES = {
    "py": "python",
    "go": "go",
    "ts": "typescript",
    "js": "javascript",
    "java": "java",
    "rb": "ruby",
    "rs": "rust",
    "yaml": "yaml",
    "yml": "yaml",
    "json": "json",
    "md": "markdown",
    "sh": "shell",
    "tf": "hcl",
}


@dataclass(frozen=True, slots=True)
class SearchQuery:
    terms: list[str]
    qualifiers: dict[str, list[str]] = field(default_factory=dict)

    def wants(self, key: str) -> list[str]:
        return self.qualifiers.get(key, [])


@dataclass(frozen=True, slots=True)
class SearchHit:
    repo: Repo
    path: str
    text: str
    ref: str


def parse_query(raw: str) -> SearchQuery | None:
    """The query's terms and qualifiers, or ``None`` when it has no search term."""
    try:
        tokens = shlex.split(raw)
    except ValueError:
        tokens = raw.split()
    qualifiers: dict[str, list[str]] = {}
    terms: list[str] = []
    for token in tokens:
        key, sep, value = token.partition(":")
        if sep and key.lower() in QUALIFIERS:
            qualifiers.setdefault(key.lower(), []).append(value.lower())
        else:
            terms.append(token)
    return SearchQuery(terms, qualifiers) if terms else None


def _in_scope(repo: Repo, query: SearchQuery) -> bool:
    owners = query.wants("org") + query.wants("user")
    if query.wants("repo") and repo.full_name.lower() not in query.wants("repo"):
        return False
    return not owners or repo.owner.login.lower() in owners


def _file_matches(path: str, query: SearchQuery) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    prefixes = [p.strip("/") for p in query.wants("path")]
    return (
        (not prefixes or any(path.lower().startswith(p) for p in prefixes))
        and (not query.wants("filename") or name in query.wants("filename"))
        and (not query.wants("extension") or ext in query.wants("extension"))
        and (not query.wants("language") or _LANGUAGES.get(ext, "") in query.wants("language"))
    )


def search_files(world: GitHubWorld, query: SearchQuery) -> list[SearchHit]:
    """Every default-branch file in scope whose text (or path, with ``in:path``) holds every term."""
    hits: list[SearchHit] = []
    terms = [t.lower() for t in query.terms]
    in_path = "path" in query.wants("in")
    for repo in sorted(world.repos.values(), key=lambda r: r.full_name.lower()):
        if not _in_scope(repo, query):
            continue
        head = repo.resolve(None)
        ref = head.sha if head else repo.default_branch
        for path, text in sorted(repo.tree(head).items()):
            haystack = path.lower() if in_path else text.lower()
            if _file_matches(path, query) and all(term in haystack for term in terms):
                hits.append(SearchHit(repo, path, text, ref))
    return hits


def search_item(urls: Urls, hit: SearchHit, terms: list[str], highlight: bool) -> Obj:
    """One ``items`` entry: the file's identity and links (no content), its repository and score."""
    item = render.content_json(urls, hit.repo, hit.path, hit.text, hit.ref)
    for key in ("content", "encoding", "size", "type", "download_url", "_links"):
        item.pop(key, None)
    item.update(repository=render.repo_json(urls, hit.repo), score=1.0)
    if highlight:
        item["text_matches"] = text_matches(item["url"], hit.text, terms)
    return item


def text_matches(object_url: str, text: str, terms: list[str]) -> list[Obj]:
    """GitHub's ``text_matches``: the lines around the first hit, with each term's indices in them."""
    lower = text.lower()
    first = min((lower.find(t.lower()) for t in terms if t.lower() in lower), default=-1)
    if first < 0:
        return []
    start = text.rfind("\n", 0, max(0, text.rfind("\n", 0, first))) + 1
    end = text.find("\n", text.find("\n", first) + 1)
    fragment = text[start : end if end >= 0 else len(text)]
    matches = []
    for term in terms:
        at = fragment.lower().find(term.lower())
        if at >= 0:
            matches.append({"text": fragment[at : at + len(term)], "indices": [at, at + len(term)]})
    return [
        {
            "object_url": object_url,
            "object_type": "FileContent",
            "property": "content",
            "fragment": fragment,
            "matches": matches,
        }
    ]
