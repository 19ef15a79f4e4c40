"""A small ``(event, action)`` router for webhook deliveries.

Handler modules register functions with :meth:`Router.register`; one place
(:mod:`bot.handlers`) combines them. Dispatch calls every handler registered
for the delivery's event and action (and those registered for the event with
no action), in registration order; handlers must not depend on each other's
order. A delivery nobody handles is not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

C = TypeVar("C")


@dataclass(frozen=True)
class Event:
    """One webhook delivery as handlers see it."""

    name: str  # X-GitHub-Event: "pull_request", "push", "issue_comment", ...
    payload: Mapping[str, Any]
    delivery_id: str = ""

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None

    @property
    def repo(self) -> str:
        repository = self.payload.get("repository") or {}
        return str(repository.get("full_name", ""))

    @property
    def installation_id(self) -> int | None:
        installation = self.payload.get("installation") or {}
        value = installation.get("id")
        return value if isinstance(value, int) else None


Handler = Callable[[Event, C], None]


@dataclass
class Router(Generic[C]):
    """Maps ``(event, action)`` to handlers; ``action=None`` means every action."""

    _routes: dict[tuple[str, str | None], list[Handler[C]]] = field(default_factory=dict)

    def register(self, event: str, action: str | None = None) -> Callable[[Handler[C]], Handler[C]]:
        """Decorator: call the function for ``event`` (and ``action``, if given)."""

        def decorate(func: Handler[C]) -> Handler[C]:
            self.add(event, action, func)
            return func

        return decorate

    def add(self, event: str, action: str | None, func: Handler[C]) -> None:
        self._routes.setdefault((event, action), []).append(func)

    def include(self, other: Router[C]) -> None:
        """Add every route of ``other`` to this router."""
        for key, funcs in other._routes.items():
            self._routes.setdefault(key, []).extend(funcs)

    def handlers_for(self, event: Event) -> list[Handler[C]]:
        found = list(self._routes.get((event.name, None), ()))
        if event.action is not None:
            found.extend(self._routes.get((event.name, event.action), ()))
        return found

    def dispatch(self, event: Event, context: C) -> int:
        """Run every matching handler; returns how many ran. Errors propagate."""
        funcs = self.handlers_for(event)
        for func in funcs:
            extra = {"delivery": event.delivery_id, "event": event.name}
            log.debug("dispatching to %s", func.__name__, extra=extra)
            func(event, context)
        return len(funcs)
