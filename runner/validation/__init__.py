"""Validating flow files: schema, semantics, templates, schedules; the API and its sandbox."""
