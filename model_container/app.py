"""Entry point of the abalone model image: ``app.py preprocess|train|evaluate|serve``.

SageMaker starts training images with ``train`` and hosting images with ``serve``; processing jobs pass
the mode as the container argument. Paths are under ``/opt/ml`` or ``$OPT_ML_ROOT``. A failing
preprocess / train / evaluate writes its reason to ``output/failure`` and exits 1 (2 for a bad mode).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: /opt/program/app.py (image) or model_container/app.py (repo)
    _here = Path(__file__).resolve().parent
    sys.path[0] = str(_here.parent if _here.name == "model_container" else _here)

MODES = {"preprocess": "model_container.preprocess", "train": "model_container.training",
         "evaluate": "model_container.evaluate", "serve": "model_container.serve"}


def fail(reason: str, code: int) -> int:
    from model_container import paths

    failure = paths.failure_file()
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text(reason[:4000] + "\n")
    print(reason, file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    mode = args[0] if args else ""
    if mode not in MODES:
        return fail(f"unknown mode {mode!r}: use one of {', '.join(MODES)}", 2)
    if mode == "serve":
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny matrices: threads only cost latency
    try:
        result = importlib.import_module(MODES[mode]).run()
    except Exception as error:  # every failure must reach output/failure for SageMaker's FailureReason
        traceback.print_exc()
        return fail(f"{mode} failed: {type(error).__name__}: {error}", 1)
    if result is not None:
        print(json.dumps({"mode": mode, "result": result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
