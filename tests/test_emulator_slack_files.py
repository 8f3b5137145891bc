"""File uploads as slack_sdk's ``files_upload_v2`` makes them, against the Slack emulator: the three
steps, the message that carries the file into a thread, the bytes behind ``url_private``, and the
errors Slack gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.emulators.slack import SlackEmulator
from incidentfox.emulators.slack.files import MAX_FILE_BYTES

CHANNEL = "C0INCIDENT"
HUMAN = "U0HUMAN"
LOG = b"2024-05-01T10:00:00Z ERROR checkout: connection refused (db:5432)\n" * 40


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def test_upload_into_a_thread_posts_the_file_there_and_serves_the_same_bytes(
    slack: SlackEmulator, client: AsyncWebClient, tmp_path: Path
) -> None:
    parent = slack.add_message(CHANNEL, HUMAN, "why is checkout down?")
    path = tmp_path / "checkout.log"
    path.write_bytes(LOG)
    result = await client.files_upload_v2(
        channel=CHANNEL,
        thread_ts=parent.ts,
        file=str(path),
        filename="checkout.log",
        title="Checkout log",
        initial_comment="Here is the log I read.",
    )
    file_id = result["file"]["id"]
    assert file_id.startswith("F") and result["file"]["title"] == "Checkout log"
    assert result["file"]["size"] == len(LOG) and result["file"]["mimetype"] == "text/plain"
    completed = await slack.wait_for("files.completeUploadExternal", lambda c: c.ok)
    assert completed.args["channel_id"] == CHANNEL and completed.args["thread_ts"] == parent.ts
    assert [c.args["file_id"] for c in slack.calls("upload_url", ok=True)] == [file_id]
    share = result["file"]["shares"]["public"][CHANNEL][0]
    assert share["thread_ts"] == parent.ts

    replies = await client.conversations_replies(channel=CHANNEL, ts=parent.ts)
    message = replies["messages"][-1]
    assert message["ts"] == share["ts"] and message["thread_ts"] == parent.ts
    assert message["user"] == slack.bot_user_id and "subtype" not in message
    assert message["text"] == "Here is the log I read." and message["upload"] is True
    assert [f["id"] for f in message["files"]] == [file_id]
    history = await client.conversations_history(channel=CHANNEL)
    assert [m["ts"] for m in history["messages"]] == [parent.ts], "a thread reply stays in the thread"

    [stored] = slack.files_in(CHANNEL, parent.ts)
    assert stored.id == file_id and stored.content == LOG and stored.name == "checkout.log"
    assert slack.files_in(CHANNEL) == [stored] and slack.files_in("C0OTHER") == []
    info = await client.files_info(file=file_id)
    assert info["file"]["url_private"] == result["file"]["url_private"]

    url = result["file"]["url_private"]
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {slack.bot_token}"}) as response:
            assert response.status == 200 and response.content_type == "text/plain"
            assert await response.read() == LOG
        async with http.get(result["file"]["url_private_download"], headers=_auth(slack)) as response:
            assert response.headers["Content-Disposition"].startswith("attachment;")
        async with http.get(url) as response:
            assert response.status == 401, "url_private needs the bot token, as on Slack"
        async with http.get(url, headers={"Authorization": f"Bearer {slack.app_token}"}) as response:
            assert response.status == 403


async def test_an_unknown_or_closed_channel_is_refused_the_way_slack_refuses_it(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as unknown:
        await client.files_upload_v2(channel="#incidents", content="x", filename="a.txt")
    assert unknown.value.response["error"] == "channel_not_found"
    slack.add_channel("C0PRIVATE", "secret-ops", is_private=True)
    slack.workspace.channels["C0PRIVATE"]["is_member"] = False
    with pytest.raises(SlackApiError) as outside:
        await client.files_upload_v2(channel="C0PRIVATE", content="x", filename="a.txt")
    assert outside.value.response["error"] == "not_in_channel"
    assert slack.messages("C0PRIVATE") == [] and slack.files_in("C0PRIVATE") == []
    assert not any(f.completed for f in slack.workspace.files.values())


async def test_a_file_over_the_cap_is_refused_before_its_bytes_are_sent() -> None:
    assert MAX_FILE_BYTES == 50 * 1024 * 1024
    async with SlackEmulator(max_file_bytes=1024) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        with pytest.raises(SlackApiError) as too_big:
            await client.files_upload_v2(channel=CHANNEL, content=b"x" * 1025, filename="big.bin")
        assert too_big.value.response["error"] == "file_upload_size_restricted"
        assert "1024 bytes" in too_big.value.response["response_metadata"]["messages"][0]
        assert slack.calls("upload_url") == [] and slack.calls("files.completeUploadExternal") == []
        fits = await client.files_upload_v2(channel=CHANNEL, content=b"x" * 1024, filename="fits.bin")
        assert fits["file"]["size"] == 1024 and fits["file"]["mimetype"] == "application/octet-stream"


async def test_each_step_checks_its_arguments_like_slack(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    for args, field in (({"length": "3"}, "filename"), ({"filename": "a.txt"}, "length")):
        with pytest.raises(SlackApiError) as missing:
            await client.api_call("files.getUploadURLExternal", params=args)
        assert missing.value.response["error"] == "invalid_arguments"
        assert field in missing.value.response["response_metadata"]["messages"][0]
    issued = await client.files_getUploadURLExternal(filename="notes.md", length=5)
    async with aiohttp.ClientSession() as http:
        async with http.post(issued["upload_url"], data=b"too long") as response:
            assert response.status == 400 and "length mismatch" in await response.text()
        with pytest.raises(SlackApiError) as early:
            await client.files_completeUploadExternal(files=[{"id": issued["file_id"]}], channel_id=CHANNEL)
        assert early.value.response["error"] == "file_not_found", "no bytes arrived yet"
        form = aiohttp.FormData()
        form.add_field("filename", b"hello", filename="notes.md", content_type="text/markdown")
        async with http.post(issued["upload_url"], data=form) as response:
            assert response.status == 200 and await response.text() == "OK - 5"
    with pytest.raises(SlackApiError) as unknown:
        await client.files_completeUploadExternal(files=[{"id": "F0NOSUCH"}], channel_id=CHANNEL)
    assert unknown.value.response["error"] == "file_not_found"
    with pytest.raises(SlackApiError) as malformed:
        await client.api_call("files.completeUploadExternal", params={"files": "not json"})
    assert malformed.value.response["error"] == "invalid_arguments"
    private = await client.files_completeUploadExternal(files=[{"id": issued["file_id"], "title": "Notes"}])
    assert private["files"][0]["title"] == "Notes" and private["files"][0]["shares"] == {}
    assert slack.messages(CHANNEL) == [], "without a channel the file is private: no message"
    finished = slack.find_file(issued["file_id"])
    assert finished is not None and finished.content == b"hello" and finished.mimetype == "text/markdown"
    with pytest.raises(SlackApiError) as twice:
        await client.files_completeUploadExternal(files=[{"id": issued["file_id"]}], channel_id=CHANNEL)
    assert twice.value.response["error"] == "file_not_found", "a finished upload cannot be finished again"


def _auth(slack: SlackEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {slack.bot_token}"}
