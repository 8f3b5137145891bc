"""Files the bot uploads (``files_upload_v2``) on the local workspace page: the message arrives live
with its file cards, and the page serves the bytes from its own origin under its own access rule."""

from __future__ import annotations

from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from tests.local_page import GENERAL, local_page

ADMIN = "a" * 40
LOG = "10:00:01 ERROR checkout: connection refused (db:5432)\n" * 50
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 1200


async def test_an_uploaded_file_shows_as_a_card_and_downloads_from_the_page(tmp_path: Path) -> None:
    async with local_page(tmp_path, host="0.0.0.0", team_in_general=False, admin_token=ADMIN) as page:
        assert page.fox.local is not None
        slack = page.fox.local.slack
        page.token = ADMIN
        parent = slack.add_message(GENERAL, "U0LOCALUSER", "can I see the checkout log?")
        bot = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        async with page.events() as events:
            await bot.files_upload_v2(
                channel=GENERAL,
                thread_ts=parent.ts,
                file_uploads=[
                    {"content": LOG, "filename": "checkout.log", "title": "Checkout log"},
                    {"content": PNG, "filename": "latency.png"},
                ],
                initial_comment="The log and the latency graph.",
            )
            live = await events.next("message", lambda m: bool(m["files"]) and m["thread_ts"] == parent.ts)
        assert live["text"] == "The log and the latency graph." and live["is_bot"]
        status, thread = await page.get(f"/ui/api/channels/{GENERAL}/threads/{parent.ts}")
        assert status == 200
        [message] = [m for m in thread["messages"] if m["files"]]
        assert message == live
        log_card, png_card = message["files"]
        assert log_card["name"] == "checkout.log" and log_card["title"] == "Checkout log"
        assert (log_card["kind"], log_card["size"]) == ("text", len(LOG.encode()))
        assert log_card["available"] and log_card["previewable"]
        assert png_card["kind"] == "image" and not png_card["previewable"], "only text gets a preview"

        async with page.http.get(page.base + log_card["url"], headers=page.headers) as response:
            assert response.status == 200 and response.content_type == "text/plain"
            assert await response.read() == LOG.encode()
            assert response.headers["Content-Disposition"].startswith("attachment;")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with page.http.get(f"{page.base}{png_card['url']}?token={ADMIN}") as response:
            assert response.status == 200 and response.content_type == "image/png"
            assert await response.read() == PNG, "a link passes the token in the query, as the page does"
        async with page.http.get(page.base + log_card["url"]) as response:
            assert response.status == 401, "the files follow the page's access rule"
        status, missing = await page.get("/ui/api/files/F0NOSUCHFILE")
        assert status == 404 and "not here" in missing["message"]
        unshared = await bot.files_upload_v2(content="private", filename="private.txt")
        status, _ = await page.get(f"/ui/api/files/{unshared['file']['id']}")
        assert status == 404, "a file never shared in a channel stays off the page"
