"""The one place that combines every feature's handlers into the bot's router."""

from __future__ import annotations

from bot.intake.router import Router
from bot.services import Services


def build_router() -> Router[Services]:
    """Every handler module's routes, on one router."""
    from bot.handlers.commands import router as commands
    from bot.handlers.sync import router as sync
    from bot.handlers.validate import router as validate

    router: Router[Services] = Router()
    for part in (validate, sync, commands):
        router.include(part)
    return router
