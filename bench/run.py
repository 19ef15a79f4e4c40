"""Benchmark: flowbot's overhead over raw Docker SDK calls.

In one process, time N trivial busybox containers done by hand with the docker
SDK (create, start, wait, logs, remove) against flowbot running a flow of N
trivial tasks, as a chain (one after another) and as a fan-out (parallel up to
the same limit). Prints each pair, the ratio (target: flowbot <= 1.15x raw) and
the runner's peak memory.

    .venv/bin/python bench/run.py [-n 20] [--parallel 4] [--rounds 3]

The two sides alternate within each round so a busy machine penalises both.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker

from runner.backends.docker_backend import DockerBackend
from runner.clock import SystemClock
from runner.model.flows import flow_from_data
from runner.offline_images import BUSYBOX, ensure_image
from runner.running.service import RunService
from runner.state.db import connect
from runner.state.records import Status, Trigger, TriggerType
from runner.state.store import RunStore

TARGET = 1.15
SHAPES = {"chain": (True, 1), "fan-out": (False, 0)}  # (needs chain?, parallelism; 0 = --parallel)


def raw_one(client: docker.DockerClient, index: int) -> None:
    container = client.containers.create(BUSYBOX, ["sh", "-ec", f"echo task {index}"],
                                         labels={"dev.flowbot.bench": "raw"})
    container.start()
    container.wait()
    container.logs()
    container.remove(force=True)


def raw(client: docker.DockerClient, n: int, parallel: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda i: raw_one(client, i), range(n)))
    return time.perf_counter() - start


def flow_data(n: int, chain: bool) -> dict[str, Any]:
    tasks = []
    for i in range(n):
        task: dict[str, Any] = {"id": f"t{i}", "image": BUSYBOX, "commands": [f"echo task {i}"]}
        if chain and i:
            task["needs"] = [f"t{i - 1}"]
        tasks.append(task)
    return {"id": "bench-chain" if chain else "bench-fan", "tasks": tasks}


def flowbot(service: RunService, source: Path, n: int, chain: bool) -> float:
    flow = flow_from_data(flow_data(n, chain))
    start = time.perf_counter()
    submission = service.submit(flow, {}, repo="bench/bench", commit=None, source=source,
                                trigger=Trigger(TriggerType.CLI, "bench"))
    run = service.execute(submission.run_id)
    elapsed = time.perf_counter() - start
    if run.status is not Status.SUCCESS:
        raise SystemExit(f"bench run {run.id} ended {run.status.value}: {run.error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="containers/tasks per shape")
    parser.add_argument("--parallel", type=int, default=4, help="fan-out parallelism")
    parser.add_argument("--rounds", type=int, default=3, help="alternating repetitions")
    args = parser.parse_args()
    client = docker.from_env()
    ensure_image(client, BUSYBOX)
    with tempfile.TemporaryDirectory(prefix="flowbot-bench-") as tmp:
        data, source = Path(tmp) / "data", Path(tmp) / "repo"
        source.mkdir()
        (source / "README").write_text("bench\n")
        store = RunStore(connect(f"sqlite:///{tmp}/flowbot.db"), SystemClock())
        service = RunService(store, DockerBackend(client=client, owner="bench"), data, {},
                             SystemClock(), max_parallel=args.parallel, owner="bench")
        raw_one(client, -1)  # warm up the engine and the image cache
        flowbot(service, source, 1, chain=True)
        tracemalloc.start()
        totals = {shape: [0.0, 0.0] for shape in SHAPES}
        for round_number in range(args.rounds):
            for shape, (chain, parallel) in SHAPES.items():
                parallel = parallel or args.parallel
                # alternate who goes first: the engine's own load drifts between runs
                order = (0, 1) if round_number % 2 == 0 else (1, 0)
                for who in order:
                    elapsed = (raw(client, args.n, parallel) if who == 0
                               else flowbot(service, source, args.n, chain))
                    totals[shape][who] += elapsed
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    results = [(shape, raw_s, bot_s) for shape, (raw_s, bot_s) in totals.items()]
    print(f"{args.rounds} rounds of {args.n} containers/tasks per shape, totals:")
    print(f"{'shape':<8} {'raw s':>8} {'flowbot s':>10} {'ratio':>7}")
    for shape, raw_s, bot_s in results:
        print(f"{shape:<8} {raw_s:>8.2f} {bot_s:>10.2f} {bot_s / raw_s:>6.2f}x")
    worst = max(bot_s / raw_s for _, raw_s, bot_s in results)
    verdict = "within" if worst <= TARGET else "OVER"
    print(f"worst ratio {worst:.2f}x ({verdict} the {TARGET:.2f}x target)")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"runner peak memory: {peak / 1e6:.1f} MB traced Python allocations, "
          f"{rss_mb:.0f} MB max RSS")


if __name__ == "__main__":
    main()
