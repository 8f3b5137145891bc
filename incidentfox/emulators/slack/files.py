"""File uploads as ``files_upload_v2`` makes them, and the files' download route.

The three steps, answered as Slack answers them:

1. ``files.getUploadURLExternal`` (``filename``, ``length``) issues a file id ``F…`` and an upload
   URL whose secret path is its only credential (slack_sdk posts to it without a token).
2. ``POST /upload/v1/{key}``: the bytes, as a raw body or multipart (Slack takes both). Exactly
   ``length`` bytes or HTTP 400; HTTP 200 ``OK - {length}`` (text/plain) otherwise. Recorded in the
   call log as method ``"upload_url"`` (args ``file_id``, ``length``; never the bytes).
3. ``files.completeUploadExternal`` (``files`` JSON, ``channel_id``/``channels``, ``thread_ts``,
   ``initial_comment``) finishes the files and, when given a channel, posts the message that carries
   them from the uploading bot: no subtype, ``files: [...]``, ``upload: true``, the comment as text.

``url_private`` (``GET /files/{id}/{name}``) serves the bytes to the bot token only, as Slack does;
without it the answer is 401 ``not_authed`` (another token: 403 ``invalid_auth``). The local web
page never links here: it serves files from its own origin under its own access rule.

Files are capped at ``MAX_FILE_BYTES`` (50 MiB, Slack allows 1 GB): a longer ``length`` is answered
``file_upload_size_restricted``.
"""

from __future__ import annotations

import json
import mimetypes
import time
import uuid
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from incidentfox.emulators.slack.requests import bearer_token
from incidentfox.emulators.slack.store import FileShare, RecordedCall, StoredFile, StoredMessage
from incidentfox.emulators.slack.validation import validate_message
from incidentfox.emulators.slack.web_api import ApiError, Handler, WebApi

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_ALT_TXT = 1000
_CHUNK = 64 * 1024

# extension -> (mimetype, Slack filetype, Slack pretty_type); anything else asks ``mimetypes``.
_TYPES: dict[str, tuple[str, str, str]] = {
    "txt": ("text/plain", "text", "Plain Text"),
    "log": ("text/plain", "text", "Plain Text"),
    "md": ("text/markdown", "markdown", "Markdown (raw)"),
    "json": ("application/json", "json", "JSON"),
    "yaml": ("application/yaml", "yaml", "YAML"),
    "yml": ("application/yaml", "yaml", "YAML"),
    "csv": ("text/csv", "csv", "CSV"),
    "py": ("text/x-python", "python", "Python"),
    "sh": ("text/x-sh", "shell", "Shell"),
    "diff": ("text/x-diff", "diff", "Diff"),
    "patch": ("text/x-diff", "diff", "Diff"),
    "html": ("text/html", "html", "HTML"),
    "xml": ("application/xml", "xml", "XML"),
    "png": ("image/png", "png", "PNG"),
    "jpg": ("image/jpeg", "jpg", "JPEG"),
    "jpeg": ("image/jpeg", "jpg", "JPEG"),
    "gif": ("image/gif", "gif", "GIF"),
    "svg": ("image/svg+xml", "svg", "SVG"),
    "pdf": ("application/pdf", "pdf", "PDF"),
    "zip": ("application/zip", "zip", "Zip"),
    "gz": ("application/gzip", "gzip", "GZip"),
    "tar": ("application/x-tar", "tar", "Tar"),
}
_TEXT_APPLICATION_TYPES = {"application/json", "application/yaml", "application/xml", "application/x-yaml"}


def file_type(name: str) -> tuple[str, str, str]:
    """``(mimetype, filetype, pretty_type)`` guessed from a file name, as Slack guesses them."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    known = _TYPES.get(extension)
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed:
        return guessed, extension or "binary", extension.upper() or "Binary"
    return "application/octet-stream", "binary", "Binary"


def is_text(mimetype: str) -> bool:
    """Whether a file of this type reads as text (logs, JSON, YAML, code...)."""
    return mimetype.startswith("text/") or mimetype in _TEXT_APPLICATION_TYPES


def content_disposition(name: str, *, attachment: bool = True) -> str:
    """A ``Content-Disposition`` header for ``name`` (ASCII fallback plus the UTF-8 name)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{fallback or 'file'}\"; filename*=UTF-8''{quote(name, safe='')}"


class FilesApi:
    """``files.getUploadURLExternal``, ``files.completeUploadExternal``, ``files.info`` and the upload
    and download routes, on the plumbing (auth, faults, rate limits, call log) of ``WebApi``."""

    def __init__(self, api: WebApi, *, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.api = api
        self.max_bytes = max_bytes
        api.register(self.handlers())

    def handlers(self) -> dict[str, Handler]:
        return {
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "files.info": self._info,
        }

    # -- Web API methods ----------------------------------------------------------------------------

    async def _get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            raise ApiError("invalid_arguments", ["[ERROR] missing required field: filename"])
        length = _length(args.get("length"))
        if length == 0:
            raise ApiError("missing_argument", ["[ERROR] length must be more than 0 bytes"])
        if length > self.max_bytes:
            raise ApiError(
                "file_upload_size_restricted",
                [f"[ERROR] the emulator takes files up to {self.max_bytes} bytes; length was {length}"],
            )
        alt_txt = args.get("alt_txt")
        if isinstance(alt_txt, str) and len(alt_txt) > MAX_ALT_TXT:
            raise ApiError("alt_txt_too_large")
        mimetype, filetype, pretty_type = file_type(filename)
        stored = StoredFile(
            id="F" + uuid.uuid4().hex[:10].upper(),
            name=filename,
            title=filename,
            mimetype=mimetype,
            filetype=filetype,
            pretty_type=pretty_type,
            length=length,
            user=self.api.identity.bot_user_id,
            created=int(time.time()),
            upload_key=uuid.uuid4().hex + uuid.uuid4().hex,
            alt_txt=alt_txt if isinstance(alt_txt, str) else None,
        )
        self.api.workspace.files[stored.id] = stored
        return {"upload_url": f"{self.api.base_url}upload/v1/{stored.upload_key}", "file_id": stored.id}

    async def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        items = _file_items(args.get("files"))
        files = [self._uploaded(item["id"]) for item in items]
        if len({f.id for f in files}) != len(files):
            raise ApiError("invalid_arguments", ["[ERROR] the same file id is listed twice"])
        targets = _targets(args)
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        if thread_ts is not None and len(targets) > 1:
            raise ApiError("invalid_arguments", ["[ERROR] thread_ts needs exactly one channel"])
        for channel in targets:
            self._check_channel(channel)
        comment = args.get("initial_comment")
        blocks = None if comment else args.get("blocks")
        invalid = validate_message(comment, blocks, require_content=False)
        if invalid is not None:
            raise ApiError.of(invalid)
        for item, stored in zip(items, files, strict=True):
            stored.completed = True
            title = item.get("title")
            if isinstance(title, str) and title:
                stored.title = title
        for channel in targets:
            message = self.api.workspace.add_message(
                StoredMessage(
                    channel=channel,
                    ts=self.api.ts_clock.next(),
                    text=str(comment or ""),
                    user=self.api.identity.bot_user_id,
                    blocks=list(blocks or []) if isinstance(blocks, list) else [],
                    thread_ts=thread_ts,
                    bot_id=self.api.identity.bot_id,
                    files=[self.file_object(f, with_shares=False) for f in files],
                    upload=True,
                )
            )
            for stored in files:
                stored.shares.append(FileShare(channel, message.ts, thread_ts))
        return {"files": [self.file_object(f) for f in files]}

    async def _info(self, args: dict[str, Any]) -> dict[str, Any]:
        stored = self.api.workspace.files.get(str(args.get("file") or ""))
        if stored is None or not stored.completed:
            raise ApiError("file_not_found")
        return {
            "file": self.file_object(stored),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    def _uploaded(self, file_id: str) -> StoredFile:
        stored = self.api.workspace.files.get(file_id)
        if stored is None or stored.completed:
            raise ApiError("file_not_found", [f"[ERROR] no pending upload with id {file_id[:40]}"])
        if stored.content is None:
            raise ApiError("file_not_found", [f"[ERROR] no bytes were posted to the upload URL of {file_id}"])
        return stored

    def _check_channel(self, channel: str) -> None:
        """As ``conversations.info`` resolves ids: a registered channel, or an unregistered id that
        looks like one (``C…``/``G…``/``D…``); a registered one must have the bot and be unarchived."""
        known = self.api.workspace.channels.get(channel)
        if known is None:
            if channel[:1] not in ("C", "G", "D") or not channel.isalnum():
                raise ApiError("channel_not_found")
            return
        if known.get("is_archived"):
            raise ApiError("is_archived")
        if known.get("is_member") is False:
            raise ApiError("not_in_channel")

    # -- the file object ----------------------------------------------------------------------------

    def file_object(self, stored: StoredFile, *, with_shares: bool = True) -> dict[str, Any]:
        """The file as ``files.info`` and messages show it."""
        ident, base = self.api.identity, self.api.base_url
        name = quote(stored.name, safe="")
        body: dict[str, Any] = {
            "id": stored.id,
            "created": stored.created,
            "timestamp": stored.created,
            "name": stored.name,
            "title": stored.title,
            "mimetype": stored.mimetype,
            "filetype": stored.filetype,
            "pretty_type": stored.pretty_type,
            "user": stored.user,
            "user_team": ident.team_id,
            "editable": False,
            "size": stored.size,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{base}files/{stored.id}/{name}",
            "url_private_download": f"{base}files/{stored.id}/download/{name}",
            "permalink": f"https://incidentfox-test.slack.com/files/{stored.user}/{stored.id}/{name}",
            "permalink_public": f"https://slack-files.com/{ident.team_id}-{stored.id}-emulator",
            "has_rich_preview": False,
            "file_access": "visible",
        }
        if stored.alt_txt:
            body["alt_txt"] = stored.alt_txt
        if with_shares:
            body.update(self._shares(stored))
        return body

    def _shares(self, stored: StoredFile) -> dict[str, Any]:
        public: dict[str, list[dict[str, Any]]] = {}
        private: dict[str, list[dict[str, Any]]] = {}
        places: dict[str, list[str]] = {"channels": [], "groups": [], "ims": []}
        for share in stored.shares:
            channel = self.api.workspace.channels.get(share.channel) or {}
            is_private = bool(channel.get("is_private", not share.channel.startswith("C")))
            entry: dict[str, Any] = {
                "ts": share.ts,
                "channel_name": str(channel.get("name", share.channel.lower())),
                "team_id": self.api.identity.team_id,
                "share_user_id": stored.user,
                "reply_users": [],
                "reply_users_count": 0,
                "reply_count": 0,
            }
            if share.thread_ts is not None:
                entry["thread_ts"] = share.thread_ts
            (private if is_private else public).setdefault(share.channel, []).append(entry)
            kind = "ims" if share.channel.startswith("D") else "groups" if is_private else "channels"
            if share.channel not in places[kind]:
                places[kind].append(share.channel)
        shares: dict[str, Any] = {}
        if public:
            shares["public"] = public
        if private:
            shares["private"] = private
        return {"shares": shares, **places, "is_public": bool(public)}

    # -- upload and download routes -----------------------------------------------------------------

    async def handle_upload(self, request: web.Request) -> web.Response:
        """``POST /upload/v1/{key}``: the bytes of a pending file, raw or multipart."""
        key = request.match_info["key"]
        stored = next(
            (f for f in self.api.workspace.files.values() if f.upload_key == key and not f.completed), None
        )
        if stored is None:
            return web.Response(status=404, text="upload URL not found or already used")
        data = await _read_upload(request, stored.length)
        if data is None or len(data) != stored.length:
            got = "more" if data is None else str(len(data))
            status, text = 400, f"length mismatch: expected {stored.length} bytes, got {got}"
        else:
            stored.content = data
            status, text = 200, f"OK - {stored.length}"
        self.api.log.record(
            RecordedCall(
                method="upload_url",
                args={"file_id": stored.id, "length": stored.length},
                token=None,
                at=time.monotonic(),
                status=status,
                response={"ok": status == 200, **({} if status == 200 else {"error": text})},
            )
        )
        return web.Response(status=status, text=text)

    async def handle_view(self, request: web.Request) -> web.Response:
        """``GET /files/{file_id}/{name}`` (``url_private``): the bytes, for the bot token only."""
        return self._serve(request, attachment=False)

    async def handle_download(self, request: web.Request) -> web.Response:
        """``GET /files/{file_id}/download/{name}`` (``url_private_download``): the same, as an attachment."""
        return self._serve(request, attachment=True)

    def _serve(self, request: web.Request, *, attachment: bool) -> web.Response:
        token = bearer_token(request)
        if not token:
            return web.Response(status=401, text="not_authed")
        if token != self.api.identity.bot_token:
            return web.Response(status=403, text="invalid_auth")
        stored = self.api.workspace.files.get(request.match_info["file_id"])
        if stored is None or not stored.completed or stored.content is None:
            return web.Response(status=404, text="file_not_found")
        return web.Response(
            body=stored.content,
            content_type=stored.mimetype,
            headers={
                "Content-Disposition": content_disposition(stored.name, attachment=attachment),
                "X-Content-Type-Options": "nosniff",
            },
        )


def _length(value: Any) -> int:
    text = str(value).strip() if value is not None else ""
    if not text:
        raise ApiError("invalid_arguments", ["[ERROR] missing required field: length"])
    if not text.isdigit():
        raise ApiError("invalid_arguments", ["[ERROR] length must be a whole number of bytes"])
    return int(text)


def _file_items(value: Any) -> list[dict[str, Any]]:
    """``files``: a JSON array (a string in a form) of ``{"id", "title"?}`` objects."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError("invalid_arguments", ["[ERROR] files must be a JSON array"]) from None
    if not isinstance(value, list) or not value:
        raise ApiError("invalid_arguments", ["[ERROR] missing required field: files"])
    items = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise ApiError("invalid_arguments", ["[ERROR] each file needs an id"])
        items.append(item)
    return items


def _targets(args: dict[str, Any]) -> list[str]:
    """``channel_id`` and the comma-separated ``channels``, once each, in order."""
    named = [str(args.get("channel_id") or ""), *str(args.get("channels") or "").split(",")]
    targets: list[str] = []
    for channel in (c.strip() for c in named):
        if channel and channel not in targets:
            targets.append(channel)
    return targets


async def _read_upload(request: web.Request, length: int) -> bytes | None:
    """The uploaded bytes (the first file part of a multipart body), or ``None`` past ``length``."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                return b""
            if isinstance(part, BodyPartReader) and (part.filename is not None or part.name == "file"):
                return await _read_part(part, length)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > length:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_part(part: BodyPartReader, length: int) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    while chunk := await part.read_chunk(_CHUNK):
        total += len(chunk)
        if total > length:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
