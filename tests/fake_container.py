"""A tiny stand-in for model_container/app.py used to test the local runtime without TensorFlow.

preprocess: copies input CSVs to output/training; train: writes model/model.txt (hyperparameters, optional
sleep); serve: answers /ping and echoes the number of rows on /invocations. FAIL=<mode> makes that mode
write output/failure and exit 1; a model folder holding BROKEN makes serve exit at once.
"""

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(os.environ.get("OPT_ML_ROOT", "/opt/ml"))


def fail(reason: str) -> None:
    (ROOT / "output").mkdir(parents=True, exist_ok=True)
    (ROOT / "output" / "failure").write_text(reason)
    print(reason, file=sys.stderr, flush=True)  # as app.py does
    sys.exit(1)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/ping" else 404)
        self.end_headers()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if not body.strip():
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "empty body"}')
            return
        rows = [line for line in body.splitlines() if line.strip()]
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.end_headers()
        self.wfile.write("\n".join(str(9.5 + i) for i in range(len(rows))).encode())

    def log_message(self, *args):
        pass


def main() -> None:
    mode = sys.argv[1]
    if os.environ.get("FAIL") == mode:
        fail(f"{mode} failed on purpose")
    if mode == "preprocess":
        out = ROOT / "processing" / "output" / "training"
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted((ROOT / "processing" / "input" / "data").rglob("*.csv")):
            (out / path.name).write_text(path.read_text())
    elif mode == "train":
        params = json.loads((ROOT / "input" / "config" / "hyperparameters.json").read_text())
        seconds = float(params.get("sleep", os.environ.get("FAKE_TRAIN_SECONDS", 0)))
        for step in range(int(seconds / 0.5)):
            print(f"progress: step {step + 1}", flush=True)
            time.sleep(0.5)
        time.sleep(seconds % 0.5)
        data = sorted(p.name for p in (ROOT / "input" / "data" / "training").iterdir())
        (ROOT / "model" / "model.txt").write_text(json.dumps({"params": params, "data": data}))
    elif mode == "serve":
        if (ROOT / "model" / "BROKEN").exists():
            print("model is broken", flush=True)
            sys.exit(3)
        host = os.environ.get("MODEL_SERVER_HOST", "0.0.0.0")  # the real container's contract (serve.py)
        ThreadingHTTPServer((host, int(os.environ["SAGEMAKER_BIND_TO_PORT"])), Handler).serve_forever()


if __name__ == "__main__":
    main()
