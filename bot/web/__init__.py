"""The HTTP pages and API: run pages, logs, flows, runs, schedules, health."""
