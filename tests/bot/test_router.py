from bot.intake.router import Event, Router


def test_dispatch_by_event_and_action() -> None:
    seen: list[str] = []
    router: Router[list[str]] = Router()

    @router.register("pull_request", "opened")
    def opened(event: Event, ctx: list[str]) -> None:
        ctx.append("opened")

    @router.register("push")
    def pushed(event: Event, ctx: list[str]) -> None:
        ctx.append("push")

    assert router.dispatch(Event("pull_request", {"action": "opened"}), seen) == 1
    assert router.dispatch(Event("pull_request", {"action": "closed"}), seen) == 0
    assert router.dispatch(Event("push", {"ref": "refs/heads/main"}), seen) == 1
    assert router.dispatch(Event("ping", {}), seen) == 0
    assert seen == ["opened", "push"]


def test_include_combines_routers() -> None:
    a: Router[list[str]] = Router()
    b: Router[list[str]] = Router()
    a.add("push", None, lambda e, c: c.append("a"))
    b.add("push", None, lambda e, c: c.append("b"))
    combined: Router[list[str]] = Router()
    combined.include(a)
    combined.include(b)
    seen: list[str] = []
    combined.dispatch(Event("push", {}), seen)
    assert sorted(seen) == ["a", "b"]


def test_event_fields() -> None:
    event = Event("push", {"repository": {"full_name": "o/r"}, "installation": {"id": 9}})
    assert (event.repo, event.installation_id, event.action) == ("o/r", 9, None)
