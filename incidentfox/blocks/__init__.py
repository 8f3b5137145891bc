"""Pure renderers: a run's data in, Block Kit JSON out, with Slack's limits enforced (design §8).

- ``progress.render_progress`` / ``progress_text``: the live message while a run works.
- ``rca.render_rca`` / ``rca_text`` and ``rca.render_error`` / ``error_text``: the final message.
- ``session.render_session_view``: the "View session" modal with a run's full timeline.
- ``limits``: the limits as constants, escaping, truncation and ``fit_message`` / ``fit_view``.

Nothing here performs I/O or reads settings; every function is deterministic given its arguments.
"""
