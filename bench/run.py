"""Benchmark: flowbot's overhead over raw Docker SDK calls.

In one process, time N trivial busybox containers done by hand with the docker
SDK (create, start, wait, logs, remove) against flowbot running a flow of N
trivial tasks, as a chain (one after another) and as a fan-out (parallel up to
the same limit). Prints each pair, the ratio (target: flowbot <= 1.15x raw) and
the runner's peak memory.

    .venv/bin/python bench/run.py [-n 20] [--parallel 4] [--rounds 3] [--backend swarm]

``--backend swarm`` compares flowbot's swarm backend with raw one-replica swarm
services made with the docker SDK (create, poll the task to its end, read the
logs, remove the service and wait for its container to go, as flowbot does),
on the engine's swarm (a single-node one is made for the bench, and left after,
when the engine is in none).

The two sides alternate within each round so a busy machine penalises both.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
from docker.types import ContainerSpec, RestartPolicy, TaskTemplate

from runner.backends import make_backend
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


SWARM_POLL = 0.1  # seconds between task state reads, on both sides
FINAL = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}


def raw_one_swarm(client: docker.DockerClient, index: int) -> None:
    api = client.api
    spec = ContainerSpec(BUSYBOX, command=["sh"], args=["-ec", f"echo task {index}"],
                         labels={"dev.flowbot.bench": "raw"})
    service = api.create_service(
        TaskTemplate(spec, restart_policy=RestartPolicy(condition="none")),
        name=f"bench-raw-{uuid.uuid4().hex[:12]}", labels={"dev.flowbot.bench": "raw"})["ID"]
    while True:
        tasks = api.tasks(filters={"service": service})
        if tasks and tasks[0]["Status"]["State"] in FINAL:
            break
        time.sleep(SWARM_POLL)
    b"".join(api.service_logs(service, stdout=True, stderr=True, is_tty=False))
    api.remove_service(service)
    while api.containers(all=True, filters={"label": f"com.docker.swarm.service.id={service}"}):
        time.sleep(SWARM_POLL)


def raw(client: docker.DockerClient, n: int, parallel: int, backend: str = "docker") -> float:
    one = raw_one_swarm if backend == "swarm" else raw_one
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda i: one(client, i), range(n)))
    return time.perf_counter() - start


def ensure_swarm(client: docker.DockerClient) -> bool:
    """Make the engine a single-node swarm manager if it is in no swarm; True if made."""
    state = (client.info().get("Swarm") or {}).get("LocalNodeState", "inactive")
    if state == "active":
        return False
    client.swarm.init(advertise_addr="127.0.0.1")
    return True


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
    parser.add_argument("--backend", choices=("docker", "swarm"), default="docker",
                        help="flowbot's backend, and the raw SDK calls it is compared with")
    args = parser.parse_args()
    client = docker.from_env()
    ensure_image(client, BUSYBOX)
    made_swarm = args.backend == "swarm" and ensure_swarm(client)
    try:
        totals, peak = measure(client, args)
    finally:
        if made_swarm:
            client.swarm.leave(force=True)
    report(args, totals, peak)


def measure(client: docker.DockerClient, args: argparse.Namespace,
            ) -> tuple[dict[str, list[float]], int]:
    """Seconds per shape, [raw, flowbot], over all rounds; and the traced peak bytes."""
    options: dict[str, Any] = {"client": client}
    if args.backend == "swarm":
        options["poll_seconds"] = SWARM_POLL
    with tempfile.TemporaryDirectory(prefix="flowbot-bench-") as tmp:
        data, source = Path(tmp) / "data", Path(tmp) / "repo"
        source.mkdir()
        (source / "README").write_text("bench\n")
        store = RunStore(connect(f"sqlite:///{tmp}/flowbot.db"), SystemClock())
        backend = make_backend(args.backend, "bench", **options)
        service = RunService(store, backend, data, {},
                             SystemClock(), max_parallel=args.parallel, owner="bench")
        raw(client, 1, 1, args.backend)  # warm up the engine and the image cache
        flowbot(service, source, 1, chain=True)
        tracemalloc.start()
        totals = {shape: [0.0, 0.0] for shape in SHAPES}
        for round_number in range(args.rounds):
            for shape, (chain, parallel) in SHAPES.items():
                parallel = parallel or args.parallel
                # alternate who goes first: the engine's own load drifts between runs
                order = (0, 1) if round_number % 2 == 0 else (1, 0)
                for who in order:
                    elapsed = (raw(client, args.n, parallel, args.backend) if who == 0
                               else flowbot(service, source, args.n, chain))
                    totals[shape][who] += elapsed
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return totals, peak


def report(args: argparse.Namespace, totals: dict[str, list[float]], peak: int) -> None:
    results = [(shape, raw_s, bot_s) for shape, (raw_s, bot_s) in totals.items()]
    print(f"backend {args.backend}: {args.rounds} rounds of {args.n} containers/tasks "
          "per shape, totals:")
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
