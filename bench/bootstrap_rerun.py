"""A no-op re-run of bootstrap against its first run, on moto's server, measured in the same process.

Each round resets the server, runs bootstrap on the empty account (the baseline), then again with the
same settings (the re-run, which must change nothing). Prints wall time, API calls and mutating calls
of both and the re-run / first-run ratios (medians over the rounds).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import boto3

from mlops_core.aws import Clients
from mlops_core.local.embedded import EmbeddedAws
from mlops_core.logs import configure_logging
from mlops_core.project import Project, bootstrap

READS = ("Describe", "List", "Get", "BatchGet", "Head")


def measure(session: boto3.Session, project: Project, calls: list[str]) -> tuple[float, int, int]:
    """Wall time, API calls and mutating calls of one bootstrap."""
    calls.clear()
    clients = Clients(session)
    start = time.perf_counter()
    bootstrap(project, clients=clients)
    elapsed = time.perf_counter() - start
    return elapsed, len(calls), sum(1 for op in calls if not op.startswith(READS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    configure_logging(level="WARNING")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    results: dict[str, list[tuple[float, int, int]]] = {"first run": [], "no-op re-run": []}
    with EmbeddedAws() as server, server.activated():
        session = boto3.Session(region_name=server.region)
        calls: list[str] = []
        session.events.register("before-call", lambda model, **_: calls.append(model.name))
        account = Clients(session).account_id()
        project = Project(name="bench", account_id=account, region=server.region)
        for _ in range(rounds):
            server.reset()
            results["first run"].append(measure(session, project, calls))
            results["no-op re-run"].append(measure(session, project, calls))
    medians = {name: tuple(statistics.median(v[i] for v in values) for i in range(3))
               for name, values in results.items()}
    for name, (seconds, total, mutating) in medians.items():
        print(f"{name:<14} median {seconds * 1000:7.1f} ms   {total:4.0f} API calls   {mutating:3.0f} mutating")
    (first_s, first_calls, _), (again_s, again_calls, again_mutating) = medians.values()
    print(f"ratio re-run / first run: time {again_s / first_s:.2f}, API calls {again_calls / first_calls:.2f}; "
          f"mutating calls on re-run: {again_mutating:.0f} (goal 0: {'met' if again_mutating == 0 else 'NOT met'})")


if __name__ == "__main__":
    main()
