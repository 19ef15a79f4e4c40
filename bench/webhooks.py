"""Benchmark: webhook intake of ``flowbot serve`` next to a bare endpoint.

Starts two servers on loopback, each in its own process under uvicorn: the
flowbot app (SQLite in a temporary data dir, delivery workers running) and a
bare FastAPI endpoint that only checks the HMAC. A third process loads each in
turn with the same number of signed ``ping`` deliveries (bounded count,
loopback only) and reports accepted deliveries/second and p50/p99 latency.
Afterwards every delivery flowbot accepted must be in its database.

    .venv/bin/python bench/webhooks.py [-n 2000] [-c 16] [-r 5] [-w 2]

Rounds alternate between the servers (and which goes first), and each round
starts only once flowbot's workers have processed every earlier delivery, so
neither server is measured while the other still works. Reported figures are
the medians over the rounds.

Targets: flowbot >= half the bare throughput, p99 < 50 ms, all recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

SECRET = "bench-secret"
BODY = json.dumps({"zen": "Practicality beats purity.", "hook_id": 1,
                   "hook": {"type": "Repository", "id": 1, "events": ["push"]},
                   "repository": {"full_name": "bench/flows"}}).encode()
SIGNATURE = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the servers -------------------------------------------------------------

def serve_bare(port: int) -> None:
    import uvicorn

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse({"ok": True})

    @app.post("/webhook")
    async def webhook(request: Request) -> Response:
        body = await request.body()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        given = request.headers.get("x-hub-signature-256", "")
        if not hmac.compare_digest(expected.encode(), given.encode()):
            return JSONResponse({"message": "bad signature"}, status_code=401)
        return JSONResponse({"message": "accepted"}, status_code=202)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_flowbot(port: int, data_dir: Path, workers: int) -> None:
    import uvicorn

    from bot.github.local import LocalGitHub
    from bot.intake.app import create_app
    from bot.runtime import build_runtime
    from bot.settings import Settings

    settings = Settings(data_dir=data_dir, webhook_secret=SECRET, host="127.0.0.1", port=port,
                        workers=workers)
    runtime = build_runtime(settings, github=LocalGitHub(everyone="admin"))
    runtime.start()
    try:
        uvicorn.run(create_app(settings, runtime.services), host="127.0.0.1", port=port,
                    log_level="warning", access_log=False)
    finally:
        runtime.stop()


# --- the load ----------------------------------------------------------------

async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str,
                path: str, delivery: str) -> int:
    """One keep-alive HTTP/1.1 POST on an open connection; the status code."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-GitHub-Event: ping\r\nX-GitHub-Delivery: {delivery}\r\n"
            f"X-Hub-Signature-256: {SIGNATURE}\r\nContent-Length: {len(BODY)}\r\n\r\n")
    writer.write(head.encode() + BODY)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _load(url: str, count: int, concurrency: int) -> dict[str, Any]:
    """A minimal keep-alive client, so the load generator is not the bottleneck."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    accepted = errors = 0
    remaining = count

    async def worker() -> None:
        nonlocal accepted, errors, remaining
        reader, writer = await asyncio.open_connection(host, port)
        for _ in range(5):  # warm up the connection and the server's code paths
            await _post(reader, writer, host, parts.path, f"warm-{uuid.uuid4()}")
        await ready.wait()
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            try:
                status = await _post(reader, writer, host, parts.path, str(uuid.uuid4()))
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors += 1
                reader, writer = await asyncio.open_connection(host, port)
                continue
            finally:
                latencies.append(time.perf_counter() - start)
            accepted += status == 202
        writer.close()

    ready = asyncio.Event()
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(1.0)
    began = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"accepted": accepted, "errors": errors, "rate": accepted / elapsed,
            "warmup": 5 * concurrency,
            "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


def load(url: str, count: int, concurrency: int) -> None:
    print(json.dumps(asyncio.run(_load(url, count, concurrency))))


# --- orchestration -----------------------------------------------------------

def _start(args: list[str], port: int) -> subprocess.Popen[bytes]:
    import httpx

    proc = subprocess.Popen([sys.executable, __file__, *args])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server {args[0]} exited with {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server {args[0]} did not start")


def _measure(port: int, count: int, concurrency: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--load", f"http://127.0.0.1:{port}/webhook",
         "-n", str(count), "-c", str(concurrency)],
        check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"load failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _engine(data_dir: Path) -> Engine:
    from runner.state.db import open_engine

    return open_engine(f"sqlite:///{data_dir / 'flowbot.db'}")


def _recorded(engine: Engine) -> int:
    """Deliveries in flowbot's database, not counting the warm-up ones."""
    from sqlalchemy import func, select

    from bot.intake.deliveries import deliveries_table as t

    query = select(func.count()).select_from(t).where(t.c.id.not_like("warm-%"))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _settle(engine: Engine, timeout: float = 120.0) -> None:
    """Wait until flowbot's workers have processed every delivery, so that no round
    (of either server) shares the CPU with the previous round's backlog."""
    from sqlalchemy import func, select

    from bot.intake.deliveries import DeliveryStatus
    from bot.intake.deliveries import deliveries_table as t

    busy = (DeliveryStatus.PENDING.value, DeliveryStatus.PROCESSING.value)
    query = select(func.count()).select_from(t).where(t.c.status.in_(busy))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.execute(query).scalar_one():
                return
        time.sleep(0.2)
    raise SystemExit("flowbot did not finish processing its deliveries")


def _median(results: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in results))


def _rounds(args: argparse.Namespace, count: int, data_dir: Path) -> dict[str, Any]:
    """Alternate bare and flowbot rounds, each started on an idle machine."""
    bare_port, bot_port = _free_port(), _free_port()
    bare = _start(["--serve-bare", str(bare_port)], bare_port)
    bot = _start(["--serve-flowbot", str(bot_port), "--data-dir", str(data_dir),
                  "--workers", str(args.workers)], bot_port)
    engine = _engine(data_dir)
    results: dict[str, list[dict[str, Any]]] = {"bare": [], "flowbot": []}
    try:
        for number in range(args.rounds):
            order = [("bare", bare_port), ("flowbot", bot_port)]
            for name, port in order if number % 2 == 0 else order[::-1]:
                _settle(engine)
                results[name].append(_measure(port, count, args.concurrency))
        _settle(engine)
        recorded = _recorded(engine)
    finally:
        engine.dispose()
        _stop(bot)
        _stop(bare)
    return {"results": results, "recorded": recorded}


def _report(args: argparse.Namespace, count: int, outcome: dict[str, Any]) -> None:
    results = outcome["results"]
    print(f"{args.rounds} alternating rounds of {count} signed deliveries per server, "
          f"{args.concurrency} concurrent, loopback; flowbot with {args.workers} delivery "
          "worker(s) processing as they arrive")
    print(f"{'':24}{'accepted/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for name, label in (("bare", "bare HMAC endpoint"), ("flowbot", "flowbot /webhook")):
        for number, r in enumerate(results[name], 1):
            print(f"  round {number} {name:14}{r['rate']:>12.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}")
        print(f"{label + ' (median)':24}{_median(results[name], 'rate'):>12.0f}"
              f"{_median(results[name], 'p50'):>10.2f}{_median(results[name], 'p99'):>10.2f}")
    ratio = _median(results["flowbot"], "rate") / _median(results["bare"], "rate")
    p99 = _median(results["flowbot"], "p99")
    print(f"flowbot/bare throughput: {ratio:.2f} (target >= 0.5); "
          f"p99 {p99:.1f} ms (target < 50)")
    accepted = sum(r["accepted"] for r in results["flowbot"])
    errors = {name: sum(r["errors"] for r in rs) for name, rs in results.items()}
    print(f"durably recorded: {outcome['recorded']} of {accepted} accepted; "
          f"connection errors: bare {errors['bare']}, flowbot {errors['flowbot']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=2000,
                        help="deliveries per server per round")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("-r", "--rounds", type=int, default=5,
                        help="rounds per server, alternating which goes first")
    parser.add_argument("-w", "--workers", type=int, default=2,
                        help="flowbot's delivery workers (FLOWBOT_WORKERS; default 2)")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-flowbot", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = max(1, min(args.count, 50_000))  # bounded load
    args.rounds = max(1, min(args.rounds, 10))
    if args.serve_bare:
        return serve_bare(args.serve_bare)
    if args.serve_flowbot:
        return serve_flowbot(args.serve_flowbot, args.data_dir, args.workers)
    if args.load:
        return load(args.load, count, args.concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        outcome = _rounds(args, count, Path(tmp))
    _report(args, count, outcome)


if __name__ == "__main__":
    main()
