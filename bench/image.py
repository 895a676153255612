"""The images: their sizes, the time from ``run IMAGE serve`` to the first 200 on /ping, and the local release
in container mode against process mode, measured in the same run.

    python bench/image.py [--epochs 30] [--pings 5]

Needs the container engine (bin/container-engine). Goals: inference image <= 300 MB, first /ping <= 5 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mlops_core.local.images import build_image, default_base
from mlops_core.local.runner import free_port
from mlops_core.local.runtime import container_engine
from workflows.data import SHIPPED

REPO = Path(__file__).resolve().parents[1]
TRAIN, SERVE = "localhost/abalone-bench:train", "localhost/abalone-bench:serve"


def trained_model(engine: str, folder: Path, epochs: int) -> Path:
    """A model/ folder trained by the training image itself (preprocess, then train)."""
    (folder / "processing/input/data").mkdir(parents=True)
    shutil.copy(SHIPPED, folder / "processing/input/data/abalone.csv")
    subprocess.run([engine, "run", "--rm", "-v", f"{folder}:/opt/ml", TRAIN, "preprocess"], check=True,
                   capture_output=True)
    (folder / "input/data/training").mkdir(parents=True)
    for name in ("training.csv", "validation.csv"):
        shutil.copy(folder / "processing/output/training" / name, folder / "input/data/training" / name)
    (folder / "input/config").mkdir(parents=True)
    (folder / "input/config/hyperparameters.json").write_text(f'{{"epochs": "{epochs}"}}')
    subprocess.run([engine, "run", "--rm", "-v", f"{folder}:/opt/ml", TRAIN, "train"], check=True, capture_output=True)
    return folder / "model"


def seconds_to_first_ping(engine: str, model: Path) -> float:
    port = free_port()
    started = time.monotonic()
    container = subprocess.run([engine, "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8080", "-v",
                                f"{model}:/opt/ml/model:ro", SERVE, "serve"], check=True, capture_output=True,
                               text=True).stdout.strip()
    try:
        while time.monotonic() - started < 60:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as answer:
                    if answer.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("no answer on /ping within 60 s")
    finally:
        subprocess.run([engine, "rm", "-f", container], capture_output=True)


def release_seconds(engine: str, epochs: int) -> float:
    from workflows.local_release import parser, run_release

    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        summary = run_release(parser().parse_args(["--engine", engine, "--out", out, "--epochs", str(epochs)]),
                              echo=lambda _line: None)
        if not summary["ok"]:
            raise RuntimeError(f"the {engine} release failed: see {out}")
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of the releases (default 30)")
    parser.add_argument("--pings", type=int, default=5, help="server starts to time (default 5)")
    args = parser.parse_args()
    engine = container_engine()
    if engine is None:
        sys.exit("no container engine: run bin/container-engine")
    base = default_base()
    built = {target: build_image(REPO / "model_container", tag, target=target, base=base)
             for target, tag in (("train", TRAIN), ("serve", SERVE))}
    for target, image in built.items():
        print(f"{target:<6} image {image.size / 1e6:7.0f} MB (base {base or 'Dockerfile default'}), "
              f"built in {image.seconds} s")
    with tempfile.TemporaryDirectory() as tmp:
        model = trained_model(engine, Path(tmp), 3)
        pings = [seconds_to_first_ping(engine, model) for _ in range(args.pings)]
    print(f"run IMAGE serve -> first 200 on /ping: median {statistics.median(pings):.2f} s "
          f"(min {min(pings):.2f}, max {max(pings):.2f}, {args.pings} starts)")
    process, container = release_seconds("process", args.epochs), release_seconds("container", args.epochs)
    print(f"local release ({args.epochs} epochs): process mode {process:.1f} s, container mode {container:.1f} s "
          f"(images already built): ratio {container / process:.2f}")
    met = built["serve"].size <= 300e6 and statistics.median(pings) <= 5
    print(f"goals: inference image <= 300 MB, first /ping <= 5 s: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
