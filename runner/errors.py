"""The one exception tree of flowbot.

Every error flowbot raises on purpose derives from :class:`FlowbotError`.
Each class builds its message in ``__init__`` so callers never format error
text themselves; the edges (CLI, HTTP, comments) turn them into exit codes,
status codes or comment text.
"""

from __future__ import annotations


class FlowbotError(Exception):
    """Base of every error flowbot raises deliberately."""


class FlowNotFound(FlowbotError):
    """No registered flow has the requested id."""

    def __init__(self, flow_id: str, known: list[str] | None = None) -> None:
        self.flow_id = flow_id
        self.known = sorted(known or [])
        super().__init__(f'no flow with id "{flow_id}"')


class InputError(FlowbotError):
    """A run input is missing, unknown or of the wrong type."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f'input "{name}": {problem}')


class BackendError(FlowbotError):
    """The execution backend (Docker engine, process host) failed."""


class StoreError(FlowbotError):
    """The state store could not be opened or migrated."""


class ConfigError(FlowbotError):
    """A setting is missing or malformed."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"{name}: {problem}")


class DuplicateFlowId(FlowbotError):
    """Two flow files declare the same flow id."""

    def __init__(self, flow_id: str, paths: list[str]) -> None:
        self.flow_id = flow_id
        self.paths = paths
        super().__init__(
            f'flow id "{flow_id}" is declared by more than one file ({", ".join(paths)}); '
            "give each flow a unique id"
        )


class ScheduleError(FlowbotError):
    """A schedule cannot be computed or changed (bad cron, unknown timezone, unknown flow)."""


class RenderError(FlowbotError):
    """A template in a task cannot be filled in safely (or names nothing)."""

    def __init__(self, task_id: str, problem: str) -> None:
        self.task_id = task_id
        self.problem = problem
        super().__init__(f'task "{task_id}": {problem}')


class SecretMissing(FlowbotError):
    """A flow declares secrets the bot has no value for."""

    def __init__(self, flow_id: str, names: list[str]) -> None:
        self.flow_id = flow_id
        self.names = sorted(names)
        listed = ", ".join(self.names)
        super().__init__(
            f'flow "{flow_id}" declares secret(s) {listed} but flowbot has no value for them; '
            f"set FLOWBOT_SECRET_<NAME> or add them to the secrets file"
        )


class EngineLost(BackendError):
    """The execution backend's engine went away and did not answer again within
    FLOWBOT_ENGINE_RECONNECT_SECONDS."""


class EngineAwayBeforeStart(FlowbotError):
    """The engine went away before any attempt of the run had started a container
    (task ``task_id`` could not start: ``reason``): the run can go back to the queue
    and start once the engine is back, instead of failing."""

    def __init__(self, task_id: str, reason: str) -> None:
        self.task_id, self.reason = task_id, reason
        super().__init__(f'task "{task_id}" could not start: {reason}')


class OwnershipLost(FlowbotError):
    """Another replica took this run over (this one was thought dead: it missed its
    heartbeat lease). The replica that learns it stops touching the run: it starts no
    attempt, records no end and removes nothing; the adopter carries on."""

    def __init__(self, run_id: str, owner: str | None) -> None:
        self.run_id, self.owner = run_id, owner
        super().__init__(f"run {run_id} is now executed by replica {owner or '(none)'}")


class FireDeclined(FlowbotError):
    """A scheduler sink did not start a fired slot (e.g. the concurrency policy
    skipped it); the fire is recorded as skipped with ``reason`` and ``run_id``."""

    def __init__(self, reason: str, run_id: str | None = None) -> None:
        self.reason = reason
        self.run_id = run_id
        super().__init__(reason)
