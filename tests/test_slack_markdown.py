"""The agent's GitHub Markdown becomes Slack mrkdwn: one test per construct, then a whole answer."""

from __future__ import annotations

import time

import pytest

from incidentfox.blocks.slack_markdown import RULE, markdown_to_mrkdwn


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("# Incident summary", "*Incident summary*"),
        ("###### Deep", "*Deep*"),
        ("## Closed heading ##", "*Closed heading*"),
        ("## Root cause: **OOM**", "*Root cause: OOM*"),
        ("# C#", "*C#*"),
        ("#hashtag is not a heading", "#hashtag is not a heading"),
    ],
)
def test_atx_headings_become_bold_lines(markdown: str, expected: str) -> None:
    assert markdown_to_mrkdwn(markdown) == expected


def test_heading_stays_on_its_own_line() -> None:
    assert markdown_to_mrkdwn("intro\n## Next steps\nbody") == "intro\n*Next steps*\nbody"


def test_double_star_and_double_underscore_bold() -> None:
    assert markdown_to_mrkdwn("**pods** and __nodes__ are down") == "*pods* and *nodes* are down"


def test_star_and_underscore_italic() -> None:
    assert markdown_to_mrkdwn("*maybe* and _probably_") == "_maybe_ and _probably_"


def test_bold_italic_and_italic_around_bold() -> None:
    assert markdown_to_mrkdwn("***very*** and *one **two** three*") == "*_very_* and _one *two* three_"


def test_stars_that_are_not_emphasis_are_left_alone() -> None:
    assert markdown_to_mrkdwn("2 * 3 * 4 and a*b*c and snake_case_name") == (
        "2 * 3 * 4 and a*b*c and snake_case_name"
    )


def test_strikethrough() -> None:
    assert markdown_to_mrkdwn("~~flaky~~ fixed") == "~flaky~ fixed"


def test_inline_link() -> None:
    assert markdown_to_mrkdwn("see [the runbook](https://wiki.example.com/run?a=1&b=2) now") == (
        "see <https://wiki.example.com/run?a=1&amp;b=2|the runbook> now"
    )


def test_link_label_loses_markdown_and_is_escaped() -> None:
    assert markdown_to_mrkdwn("[**PR** `#12` <x>](https://github.com/o/r/pull/12)") == (
        "<https://github.com/o/r/pull/12|PR #12 &lt;x&gt;>"
    )


def test_link_with_parentheses_in_url() -> None:
    assert markdown_to_mrkdwn("[wiki](https://en.wikipedia.org/wiki/Foo_(bar))") == (
        "<https://en.wikipedia.org/wiki/Foo_(bar)|wiki>"
    )


def test_link_to_a_non_web_url_keeps_only_its_text() -> None:
    assert markdown_to_mrkdwn("[docs](/docs/setup) and [x](javascript:alert)") == "docs and x"


def test_autolink_and_bare_url() -> None:
    assert markdown_to_mrkdwn("<https://grafana.example.com/d/1> https://example.com/__init__?a=1&b=2.") == (
        "<https://grafana.example.com/d/1> https://example.com/__init__?a=1&amp;b=2."
    )


def test_image() -> None:
    assert markdown_to_mrkdwn(
        "![CPU graph](https://img.example.com/cpu.png) ![](https://i.example.com/x.png)"
    ) == ("<https://img.example.com/cpu.png|CPU graph> <https://i.example.com/x.png>")


def test_unordered_lists_keep_indentation() -> None:
    markdown = "- api\n  * worker\n    + cron\n* db"
    assert markdown_to_mrkdwn(markdown) == "• api\n  • worker\n    • cron\n• db"


def test_task_list_items() -> None:
    assert markdown_to_mrkdwn("- [ ] roll back\n- [x] page on-call") == "• ☐ roll back\n• ☑ page on-call"


def test_ordered_lists_are_kept() -> None:
    assert markdown_to_mrkdwn("1. drain\n2) cordon\n   10. **wait**") == "1. drain\n2. cordon\n   10. *wait*"


def test_blockquote_is_kept_and_its_content_converted() -> None:
    assert markdown_to_mrkdwn("> **Note:** read-only\n>\n> - item\n>> nested") == (
        "> *Note:* read-only\n>\n> • item\n> nested"
    )


@pytest.mark.parametrize("markdown", ["---", "***", "___", "* * *", "- - -"])
def test_horizontal_rules(markdown: str) -> None:
    assert markdown_to_mrkdwn(f"above\n{markdown}\nbelow") == f"above\n{RULE}\nbelow"
    assert RULE == "─" * 20


def test_table_becomes_an_aligned_code_block() -> None:
    markdown = (
        "| Service | Errors | p99 |\n"
        "|---------|-------:|:----|\n"
        "| **api** | 1204 | `3.2s` |\n"
        "| db & cache | 7 | [graph](https://g.example.com) |\n"
        "| a \\| b |\n"
        "after"
    )
    assert markdown_to_mrkdwn(markdown) == (
        "```\n"
        "Service    | Errors | p99\n"
        "-----------+--------+------------------------------\n"
        "api        |   1204 | 3.2s\n"
        "db &amp; cache |      7 | graph (https://g.example.com)\n"
        "a | b      |        |\n"
        "```\n"
        "after"
    )


def test_table_with_wide_characters_stays_aligned() -> None:
    markdown = "| a | b |\n| --- | --- |\n| 漢字 | ✅ |\n| x | y |"
    assert markdown_to_mrkdwn(markdown) == "```\na    | b\n-----+---\n漢字 | ✅\nx    | y\n```"


def test_pipe_text_without_separator_row_is_not_a_table() -> None:
    assert markdown_to_mrkdwn("up | down\n---") == f"up | down\n{RULE}"


def test_fenced_code_drops_language_and_keeps_content() -> None:
    markdown = "```python\nx = a**b**c  # *not* [a](b)\n    indented\n```"
    assert markdown_to_mrkdwn(markdown) == "```\nx = a**b**c  # *not* [a](b)\n    indented\n```"


def test_fenced_code_is_escaped_but_not_double_escaped() -> None:
    markdown = "~~~\n<tag> & &amp; <@U123>\n```\n~~~"
    assert markdown_to_mrkdwn(markdown) == "```\n&lt;tag&gt; &amp; &amp; &lt;@U123&gt;\n```\n```"


def test_unclosed_fence_is_closed() -> None:
    assert markdown_to_mrkdwn("```sh\nkubectl get pods") == "```\nkubectl get pods\n```"


def test_indented_fence_inside_a_list() -> None:
    markdown = "1. Run:\n    ```bash\n    kubectl logs -l app=*api*\n    ```\n2. Done"
    assert markdown_to_mrkdwn(markdown) == "1. Run:\n```\n    kubectl logs -l app=*api*\n```\n2. Done"


def test_inline_code_is_not_converted_but_escaped() -> None:
    assert markdown_to_mrkdwn("run `grep **x** <f> && y` then **stop**") == (
        "run `grep **x** &lt;f&gt; &amp;&amp; y` then *stop*"
    )


def test_special_characters_escaped_once() -> None:
    assert markdown_to_mrkdwn("a & b < c > d &amp; e &lt; f &gt; g &copy;") == (
        "a &amp; b &lt; c &gt; d &amp; e &lt; f &gt; g &amp;copy;"
    )


def test_html_is_shown_literally() -> None:
    assert markdown_to_mrkdwn("<b>bold</b> <!-- hi -->") == "&lt;b&gt;bold&lt;/b&gt; &lt;!-- hi --&gt;"


def test_slack_tokens_written_by_the_agent_survive() -> None:
    markdown = (
        "<@U123ABC> <@W9|bob> <#C042|ops> <!here> <!subteam^S12|sre> <https://x.example.com?a=1&b=2|dash>"
    )
    assert markdown_to_mrkdwn(markdown) == (
        "<@U123ABC> <@W9|bob> <#C042|ops> <!here> <!subteam^S12|sre> <https://x.example.com?a=1&amp;b=2|dash>"
    )


def test_backslash_escapes_are_literal() -> None:
    assert (
        markdown_to_mrkdwn(r"\*\*not bold\*\* and \<x\> and 100\%") == "**not bold** and &lt;x&gt; and 100%"
    )


def test_private_use_placeholders_in_input_cannot_leak() -> None:
    assert markdown_to_mrkdwn("a\ue0000\ue001b\ue002") == "a0b"


def test_blank_lines_kept_and_outer_blank_lines_dropped() -> None:
    assert markdown_to_mrkdwn("\n\nfirst\n\n\nsecond  \r\n\n") == "first\n\n\nsecond"


def test_empty_text() -> None:
    assert markdown_to_mrkdwn("") == ""


@pytest.mark.parametrize(
    "markdown",
    [
        "**a " * 8000,
        "*a " * 10000,
        "~~a " * 8000,
        "[" * 30000,
        "# a" + " " * 20000 + "x",
        "a|b\n|-" + " " * 20000,
    ],
)
def test_stray_markers_cost_linear_time(markdown: str) -> None:
    start = time.perf_counter()
    markdown_to_mrkdwn(markdown)
    assert time.perf_counter() - start < 1.5


AGENT_ANSWER = """\
## Summary

The **checkout-api** pods are crash-looping after deploy `v2.14.0` & the error rate is *rising*.

### Evidence

- `OOMKilled` on 4/6 pods (limit **512Mi**)
- Heap grew after [PR #481](https://github.com/acme/checkout/pull/481)
  - see ~~GC tuning~~ the new cache

```yaml
resources:
  limits:
    memory: 512Mi # **not bold** <tag>
```

| Pod | Restarts | Status |
|-----|---------:|--------|
| checkout-api-7f9c | 12 | CrashLoopBackOff |
| checkout-api-2b1d | 3 | Running |

---

1. Roll back: `kubectl rollout undo deploy/checkout-api`
2. Raise the limit to **1Gi**

> Heads-up <@U024BE7LH>: this will restart the pods.
"""

EXPECTED = """\
*Summary*

The *checkout-api* pods are crash-looping after deploy `v2.14.0` &amp; the error rate is _rising_.

*Evidence*

• `OOMKilled` on 4/6 pods (limit *512Mi*)
• Heap grew after <https://github.com/acme/checkout/pull/481|PR #481>
  • see ~GC tuning~ the new cache

```
resources:
  limits:
    memory: 512Mi # **not bold** &lt;tag&gt;
```

```
Pod               | Restarts | Status
------------------+----------+-----------------
checkout-api-7f9c |       12 | CrashLoopBackOff
checkout-api-2b1d |        3 | Running
```

────────────────────

1. Roll back: `kubectl rollout undo deploy/checkout-api`
2. Raise the limit to *1Gi*

> Heads-up <@U024BE7LH>: this will restart the pods."""


def test_realistic_agent_answer() -> None:
    assert markdown_to_mrkdwn(AGENT_ANSWER) == EXPECTED


def test_the_agent_answer_renders_as_mrkdwn_without_broadcast_pings() -> None:
    from incidentfox.blocks.rca import render_answer

    answer = "## Cause\n**The pool** is exhausted; see [the runbook](https://wiki/x). <!channel> <!here|here>"
    blocks = render_answer(answer, run_id="run_1")
    text = blocks[1]["text"]["text"]
    assert text == "*Cause*\n*The pool* is exhausted; see <https://wiki/x|the runbook>. @channel @here"
