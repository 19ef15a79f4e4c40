"""Execution backends: where a task's container (or process) runs."""
