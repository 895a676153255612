"""/invocations latency and throughput of the container's server against a model.predict baseline.

Both servers are the same gunicorn + WSGI app (same parsing, same workers) on loopback, differing only in
the model call: ours runs the numpy forward pass (``app.py serve``), the baseline calls Keras
``model.predict`` per request on the same weights, as the reference image did. Measured in the same run:
single-row ``text/csv`` latency end to end (p50, p99; a new connection per request, as gunicorn's sync
workers close them) and one 10,000-row CSV request (median of several; rows per second).
Goal: single-row p50 <= 2 ms, >= 25x faster than the baseline; the 10,000-row request in <= 100 ms.

The model: ``--model-dir`` (a train output), else one trained here on ``--data`` with the container's
default hyperparameters but few epochs (latency does not depend on quality).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # noqa: E402  (run as a script from a checkout)

from model_container.predictor import Predictor, prepare  # noqa: E402
from tests.test_container_serve import Server, free_port  # noqa: E402


class KerasPredictor(Predictor):
    """The baseline: the same networks, called through Keras ``model.predict`` on every request."""

    def __init__(self, model_dir: Path):
        import keras

        loaded = Predictor.load(model_dir)
        super().__init__(loaded.spec, loaded.weights)
        self.models = [keras.models.load_model(model_dir / f"network-{i}.keras") for i in range(loaded.spec["networks"])]

    def predict(self, rows):
        import numpy as np

        features = prepare(self.spec["preparation"], rows)
        scaled = np.mean([model.predict(features, verbose=0)[:, 0] for model in self.models], axis=0, dtype=np.float64)
        return scaled * self.spec["target"]["std"] + self.spec["target"]["mean"]


def start(command: list[str], port: int, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(command, env={**os.environ, **env, "SAGEMAKER_BIND_TO_PORT": str(port),
                                             "MODEL_SERVER_HOST": "127.0.0.1", "PYTHONPATH": str(REPO),
                                             "MODEL_SERVER_LOG_LEVEL": "warning"}, start_new_session=True)
    server, deadline = Server(port, process), time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if server.request("GET", "/ping")[0] == 200:
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"server {command} did not come up")


def measure(server: Server, row: str, batch: str, single: int) -> dict:
    for _ in range(20):
        assert server.invoke(row)[0] == 200
    latencies = []
    for _ in range(single):
        started = time.perf_counter()
        status, _, _ = server.invoke(row)
        latencies.append(time.perf_counter() - started)
        assert status == 200
    batch_times = []
    for _ in range(7):
        started = time.perf_counter()
        status, _, body = server.invoke(batch)
        batch_times.append(time.perf_counter() - started)
        assert status == 200 and body.count(b"\n") == batch.count("\n") + 1
    latencies.sort()
    return {"p50": statistics.median(latencies), "p99": latencies[int(0.99 * (len(latencies) - 1))],
            "batch": statistics.median(batch_times)}


def train_model(data: Path, model_dir: Path) -> None:
    from model_container import training
    from model_container.preprocess import load_rows

    rows, _ = load_rows([data], data.parent)
    cut = len(rows) // 10
    predictor, models, report = training.fit(rows[cut:], rows[:cut], training.hyperparameters({"epochs": "20"}))
    training.save(model_dir, predictor, models, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="abalone data to train a model on when --model-dir is not given "
                                                  "(default: the UCI file shipped in workflows/)")
    parser.add_argument("--model-dir", type=Path, help="a model/ directory written by app.py train")
    parser.add_argument("--requests", type=int, default=1000, help="single-row requests to our server")
    parser.add_argument("--baseline-requests", type=int, default=200, help="single-row requests to the baseline")
    parser.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:  # child process: the model.predict server (Keras loaded in the worker, after fork)
        from model_container.serve import make_app, run_server

        run_server(lambda: make_app(KerasPredictor(args.model_dir)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.model_dir is None:
            from workflows.data import abalone_data

            args.model_dir = root / "model"
            print(f"training a model on {abalone_data(args.data)} ...", flush=True)
            train_model(abalone_data(args.data), args.model_dir)
        else:
            (root / "model").symlink_to(args.model_dir.resolve())
        row = "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15"
        batch = "\n".join([row, "F,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21", "I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055",
                           "M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155"] * 2500)
        env = {"OPT_ML_ROOT": str(root), "MODEL_SERVER_WORKERS": os.environ.get("MODEL_SERVER_WORKERS", "2")}
        results = {}
        for name, command, count in [
                ("ours (numpy)", [sys.executable, str(REPO / "model_container/app.py"), "serve"], args.requests),
                ("baseline (model.predict)", [sys.executable, __file__, "--baseline-server", "--model-dir",
                                              str(args.model_dir)], args.baseline_requests)]:
            port = free_port()
            print(f"measuring {name}: {count} single-row requests, then 7 requests of 10,000 rows ...", flush=True)
            process = start(command, port, env)
            try:
                results[name] = measure(Server(port, process), row, batch, count)
            finally:
                os.killpg(process.pid, 15)
                process.wait(timeout=30)
    print(f"workers {env['MODEL_SERVER_WORKERS']}, single-row requests: ours {args.requests}, "
          f"baseline {args.baseline_requests}; 10,000-row request: median of 7")
    for name, r in results.items():
        print(f"{name:<26} single row p50 {r['p50'] * 1000:7.2f} ms  p99 {r['p99'] * 1000:7.2f} ms   "
              f"10,000 rows {r['batch'] * 1000:7.1f} ms ({10000 / r['batch']:,.0f} rows/s)")
    ours, baseline = results["ours (numpy)"], results["baseline (model.predict)"]
    speedup = baseline["p50"] / ours["p50"]
    print(f"ratios: single-row p50 baseline/ours {speedup:.1f}x, 10,000 rows baseline/ours "
          f"{baseline['batch'] / ours['batch']:.1f}x")
    met = ours["p50"] <= 0.002 and speedup >= 25 and ours["batch"] <= 0.1
    print(f"goal: p50 <= 2 ms, >= 25x baseline, 10,000 rows <= 100 ms: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
