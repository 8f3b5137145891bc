"""Scheduled reports: a team's ``schedules.{id}`` run an investigation on a cron schedule and post it
in a channel, exactly once per slot however many IncidentFox processes share the database."""
