"""`flowbot demo`: the whole loop on embedded defaults, without GitHub.

Copies ``examples/repo-template`` into a local git repository in the data
directory, then drives the real service with the webhooks GitHub would send:
a pull request (validation status + sticky comment), a push to ``main``
(flows and schedules registered) and a ``/run`` comment (a flow run in Docker,
statuses and the reply comment). A local stand-in prints what would be posted
to GitHub. It ends with the web UI served on localhost and its address printed
(``UI_READY``: the flows page ``/``, then each run's page): until Ctrl-C when the
demo runs in a terminal, otherwise for ``--serve-seconds`` (5 by default), as it says.
Secrets come from ``FLOWBOT_SECRET_<NAME>`` / ``FLOWBOT_SECRETS_FILE`` as for
``flowbot serve``; the repository is labelled ``local/<template folder name>``.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parents[2] / "examples" / "repo-template"
SERVE_SECONDS = 5.0  # how long pages stay up when the demo is not run in a terminal
SHOWN_LINES = 30
MARKER = ".flowbot-demo"
# Inputs the demo passes with each template flow's /run comment.
DEMO_INPUTS = {"pipeline": ["region=us"], "revenue": ["data=@data/revenue-2026-11.csv"]}
# Secrets the template's flows declare, for a demo whose operator set none: the
# revenue flow's errors task posts there only when the run fails (nothing listens).
DEMO_SECRETS = {"ALERT_WEBHOOK_URL": "http://127.0.0.1:9/flowbot-demo-alerts"}
UI_READY = "\nThe web UI: {url}/  (flows; each run's page is listed above)"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("demo", help="the whole loop on the template repo, without GitHub")
    parser.add_argument("--data-dir", type=Path, help="where to keep it (default .flowbot/demo)")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="repository to copy")
    parser.add_argument("--flow", help="run only this flow (default: every flow, one by one)")
    parser.add_argument("--inputs", nargs="*", metavar="KEY=VALUE",
                        help="inputs for --flow (default: the demo's own for each flow)")
    parser.add_argument("--port", type=int, default=8080, help="run page port (default 8080)")
    parser.add_argument("--serve-seconds", type=float, default=None,
                        help="serve the run pages this long, then end (default: until Ctrl-C "
                             f"in a terminal, else {SERVE_SECONDS:g} s)")
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C")
    parser.set_defaults(handler=_handle)


def _say(text: str) -> None:
    lines = text.splitlines()
    if lines and lines[0].endswith(" edited:"):
        # progress edits of the run comment: its headline is enough here
        lines = [lines[0] + " " + next((x for x in lines if x.startswith("### ")), "")]
    shown = lines[:SHOWN_LINES] + ([f"  … ({len(lines) - SHOWN_LINES} more lines)"]
                                   if len(lines) > SHOWN_LINES else [])
    print("  [github] " + "\n           ".join(shown), flush=True)


def _fresh(data_dir: Path) -> bool:
    """Start from nothing each time (old schedules would fire, old runs confuse);
    only a directory the demo made itself is wiped."""
    marker = data_dir / MARKER
    if data_dir.exists() and any(data_dir.iterdir()):
        if not marker.exists():
            return False  # not ours: never delete it
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by flowbot demo; deleted by the next demo run\n")
    return True


def _not_copied(data_dir: Path) -> Callable[[str, list[str]], list[str]]:
    """What the copy of a repository leaves out: its git history, flowbot's local
    data, and the demo's own folder (``--template .`` keeps it inside the template)."""
    def ignore(folder: str, names: list[str]) -> list[str]:
        return [name for name in names if name in (".git", ".flowbot")
                or (Path(folder) / name).resolve() == data_dir]
    return ignore


def _make_repo(template: Path, dest: Path) -> str:
    import git

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest, ignore=_not_copied(dest.parent))
    repo = git.Repo.init(dest, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "flowbot demo")
        config.set_value("user", "email", "demo@flowbot.invalid")
    repo.git.add(A=True)
    return str(repo.index.commit("Flows from the template").hexsha)


def _handle(args: argparse.Namespace) -> int:
    import logging

    from bot.settings import Settings
    from runner.errors import FlowbotError

    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)  # the story is told on stdout
    base = Settings.from_env()
    data_dir = (args.data_dir or base.data_dir / "demo").resolve()
    if not (args.template / "flows").is_dir():
        print(f"flowbot demo: no flows/ in {args.template}; pass --template", file=sys.stderr)
        return 2
    try:
        return _demo(args, data_dir)
    except FlowbotError as exc:
        print(f"flowbot demo: {exc}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace, data_dir: Path) -> int:
    from bot.github.local import LocalGitHub
    from bot.runtime import build_runtime
    from bot.settings import Settings

    if not _fresh(data_dir):
        print(f"flowbot demo: {data_dir} holds something else; pass an empty --data-dir",
              file=sys.stderr)
        return 2
    name = args.template.resolve().name
    args.repo = f"local/{name}"
    repo_path = data_dir / name
    sha = _make_repo(args.template, repo_path)
    print(f"1. Copied {args.template} into a git repository: {repo_path} (commit {sha[:8]})")
    # the operator's settings (secrets above all), with the demo's own data dir and pages
    settings = replace(Settings.from_env(), data_dir=data_dir, database_url="",
                       webhook_secret=secrets.token_hex(16),
                       public_url=f"http://127.0.0.1:{args.port}", port=args.port,
                       host="127.0.0.1")
    settings = _with_demo_secrets(settings)
    runtime = build_runtime(settings, github=LocalGitHub(_say, everyone="admin"))
    runtime.start()
    server = _serve(runtime, settings)
    try:
        return _walk(args, runtime, repo_path, sha, settings.public_url, server)
    finally:
        server.should_exit = True
        runtime.stop()


def _with_demo_secrets(settings: Any) -> Any:
    """``settings`` with the demo's stand-in for each template secret the operator
    did not set (a value the operator set always wins)."""
    have = settings.secret_values()
    extra = {f"FLOWBOT_SECRET_{k}": v for k, v in DEMO_SECRETS.items() if k not in have}
    return replace(settings, environ={**settings.environ, **extra}) if extra else settings


def _walk(args: argparse.Namespace, runtime: Any, repo_path: Path, sha: str, url: str,
          server: Any) -> int:
    from bot.github import payloads
    from bot.intake.router import Event

    clone_url = str(repo_path)
    print("\n2. A pull request adds the flows: flowbot validates them (nothing runs)")
    runtime.dispatch(Event("pull_request", payloads.pull_request_event(
        "opened", 1, sha, repo=args.repo, clone_url=clone_url), "demo-pr"))
    print("\n3. The pull request is merged (a push to main): flows and schedules registered")
    runtime.dispatch(Event("push", payloads.push_event(sha, repo=args.repo,
                                                       clone_url=clone_url), "demo-push"))
    for row in runtime.services.registry.list(args.repo):
        for trig in row.flow.triggers:
            print(f"   {row.flow.id}: schedule {trig.id} = {trig.cron!r} ({trig.timezone})")
    finished = _run_flows(args, runtime, clone_url)
    if not finished:
        return 1
    print("\n5. Results")
    for run in finished:
        _summary(runtime, run)
    _where(runtime, finished, url, args.repo)
    _linger(args, server, url)
    return 0 if all(run.status.value == "success" for run in finished) else 1


def _run_flows(args: argparse.Namespace, runtime: Any, clone_url: str) -> list[Any]:
    """Comment /run for each flow in turn and wait for each run to end."""
    from bot.github import payloads
    from bot.intake.router import Event

    registered = [row.flow.id for row in runtime.services.registry.list(args.repo)]
    flow_ids = [args.flow] if args.flow else registered
    finished = []
    print("\n4. Someone comments /run for each flow in turn: each runs in Docker")
    for number, flow_id in enumerate(flow_ids, start=2):
        inputs = args.inputs if args.inputs is not None else DEMO_INPUTS.get(flow_id, [])
        command = " ".join([f"/run {flow_id}", *inputs])
        print(f"\n   {command!r} on issue #{number}:")
        payload = payloads.issue_comment_event(command, login="you", number=number,
                                               repo=args.repo, comment_id=1,
                                               clone_url=clone_url)
        runtime.dispatch(Event("issue_comment", payload, f"demo-run-{flow_id}"))
        runs = [r for r in runtime.services.store.list_runs(repo=args.repo, flow_id=flow_id)
                if r.trigger.type.value == "manual"]
        if not runs:
            print(f"flowbot demo: no run of {flow_id} was started (see the comment above)",
                  file=sys.stderr)
            return []
        finished.append(_wait(runtime, runs[0].id))
    return finished


def _wait(runtime: Any, run_id: str) -> Any:
    while True:
        run = runtime.services.store.get_run(run_id)
        if run is not None and run.status.terminal:
            time.sleep(0.5)  # let the last report go out
            return run
        time.sleep(0.2)


def _summary(runtime: Any, run: Any) -> None:
    print(f"\n   Run {run.id} of {run.flow_id}: {run.status.value}")
    for task in runtime.services.store.task_rows(run.id):
        took = "-" if task.duration is None else f"{task.duration:.1f}s"
        code = "-" if task.exit_code is None else task.exit_code
        print(f"   {task.task_id:<16} {task.status.value:<10} {took:>7}  exit {code}"
              f"  attempts {task.attempts}")
    ran = [task for task in runtime.services.store.task_rows(run.id) if task.attempts]
    last = ran[-1:]
    if last:
        from bot.web.pages import PAGE_TAIL_BYTES

        services = runtime.services
        text = services.logs.text_tail(services.store, run.id, last[0].task_id,
                                       PAGE_TAIL_BYTES) or ""
        print(f"\n   output of {last[0].task_id}:")
        print("\n".join(f"   | {line}" for line in text.splitlines()[-10:]))


def _where(runtime: Any, runs: list[Any], url: str, repo: str) -> None:
    print("\nWhere to look (the web UI, on this machine only):")
    print(f"   flows           {url}/")
    for run in runs:
        print(f"   run page        {url}/runs/{run.id}   ({run.flow_id})")
    print(f"   runs            {url}/runs?repo={repo}")
    print(f"   schedules       {url}/schedules")
    print(f"   JSON API        {url}/api/docs")
    print(f"   metrics         {url}/metrics")
    print(f"   data            {runtime.services.settings.data_dir}")


def _linger(args: argparse.Namespace, server: Any, url: str) -> None:
    if not server.started:
        print(f"   (port {args.port} is busy: pages not served; try --port)")
        return
    seconds = serve_seconds(args, sys.stdin.isatty())
    print(UI_READY.format(url=url))
    if seconds is None:
        print("Serving it until you press Ctrl-C.", flush=True)
    elif seconds > 0:
        print(f"Serving it for {seconds:g} s more, then the demo ends and it goes away "
              "(--serve keeps it until Ctrl-C).", flush=True)
    else:
        print("The demo ends here and it goes away (--serve keeps it until Ctrl-C).")
        return
    try:  # Ctrl-C ends it early either way
        while seconds is None:
            time.sleep(1)
        time.sleep(seconds)
    except KeyboardInterrupt:
        return


def serve_seconds(args: argparse.Namespace, interactive: bool) -> float | None:
    """How long the pages stay up after the demo: None until Ctrl-C (``--serve``, or
    a terminal without ``--serve-seconds``), else seconds."""
    if args.serve:
        return None
    if args.serve_seconds is not None:
        return max(0.0, float(args.serve_seconds))
    return None if interactive else SERVE_SECONDS


def _serve(runtime: Any, settings: Any) -> Any:
    import uvicorn

    from bot.intake.app import create_app

    app = create_app(settings, runtime.services)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="demo-http", daemon=True).start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    return server
