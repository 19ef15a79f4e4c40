"""Scheduling: cron, the flow registry, the schedule store, fires and the scheduler loop."""
