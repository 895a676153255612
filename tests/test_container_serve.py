"""serve: gunicorn running app.py on a loopback port; good requests, table-driven bad ones, a fuzz."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from model_container.predictor import Predictor, fit_preparation, prepare
from model_container.schema import FEATURES, parse_row
from model_container.serve import MAX_BODY_BYTES
from tests.test_container import APP, synthetic_rows

ROW = "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """HTTP client of a running model server."""

    def __init__(self, port: int, process: subprocess.Popen):
        self.port, self.process = port, process

    def request(self, method: str, path: str, body: bytes | str = b"", headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body.encode() if isinstance(body, str) else body,
                               headers=headers or {})
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type"), response.read()
        finally:
            connection.close()

    def invoke(self, body: bytes | str, content_type: str | None = "text/csv", accept: str | None = None):
        headers = {k: v for k, v in {"Content-Type": content_type, "Accept": accept}.items() if v is not None}
        return self.request("POST", "/invocations", body, headers)


@contextlib.contextmanager
def running_server(root: Path, workers: int = 2) -> Iterator[Server]:
    """``app.py serve`` with OPT_ML_ROOT=root on a free loopback port; /ping is 200 on entry; killed on exit."""
    port = free_port()
    env = {**os.environ, "OPT_ML_ROOT": str(root), "SAGEMAKER_BIND_TO_PORT": str(port),
           "MODEL_SERVER_HOST": "127.0.0.1", "MODEL_SERVER_WORKERS": str(workers), "MODEL_SERVER_TIMEOUT": "30"}
    process = subprocess.Popen([sys.executable, str(APP), "serve"], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(port, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited {process.returncode}: {process.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(OSError):
                if server.request("GET", "/ping")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("server did not answer /ping within 30 s")
            time.sleep(0.05)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stderr.close()
        with contextlib.suppress(ProcessLookupError):  # no worker may outlive the test
            os.killpg(process.pid, signal.SIGKILL)


def numpy_model(model_dir: Path) -> Predictor:
    """A small random network with a real fitted preparation: a served model without TensorFlow."""
    rng = np.random.default_rng(0)
    rows = [parse_row(r, 1) for r in synthetic_rows(100)]
    preparation = fit_preparation(rows)
    spec = {"preparation": preparation, "target": {"mean": 10.0, "std": 3.0}, "activations": ["relu", "relu", "linear"]}
    shapes = [(prepare(preparation, rows[:1]).shape[1], 16), (16,), (16, 8), (8,), (8, 1), (1,)]
    predictor = Predictor.from_networks(spec, [[rng.normal(0, 0.3, shape) for shape in shapes] for _ in range(2)])
    model_dir.mkdir(parents=True)
    predictor.save(model_dir)
    return Predictor.load(model_dir)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    return root, numpy_model(root / "model")


@pytest.fixture(scope="module")
def server(model):
    with running_server(model[0]) as running:
        yield running


def expected(predictor: Predictor, lines: list[str]) -> list[float]:
    return predictor.predict([parse_row(line.split(","), 1, labelled=False) for line in lines]).tolist()


def test_ping(server):
    assert server.request("GET", "/ping")[0] == 200


def test_csv_in_csv_out_with_header_and_blank_lines(server, model):
    lines = [ROW, "F,0.6,0.5,0.15,1.1,0.5,0.25,0.3", "i,0.2,0.15,0.05,0.05,0.02,0.01,0.015"]
    status, content_type, body = server.invoke(",".join(FEATURES) + "\n" + "\n".join(lines) + "\n\n")
    assert (status, content_type) == (200, "text/csv")
    np.testing.assert_allclose([float(v) for v in body.decode().split()], expected(model[1], lines), atol=1e-4)


def test_measurements_far_outside_training_get_a_finite_prediction(server):
    lines = ["M," + ",".join(["1e300"] * 7), "F," + ",".join(["0"] * 7)]
    status, _, body = server.invoke("\n".join(lines))
    assert status == 200 and all(math.isfinite(float(v)) for v in body.decode().split())


@pytest.mark.parametrize("document", [
    {"instances": [ROW.split(",")]},
    {"instances": [dict(zip(FEATURES, ROW.split(","), strict=True))]},
    [["M", 0.455, 0.365, 0.095, 0.514, 0.2245, 0.101, 0.15]],
    ["M", 0.455, 0.365, 0.095, 0.514, 0.2245, 0.101, 0.15],
    {**dict(zip(FEATURES, ROW.split(","), strict=True)), "rings": 15},
])
def test_json_in_json_out_with_rings_and_age(server, model, document):
    status, content_type, body = server.invoke(json.dumps(document), "application/json")
    assert (status, content_type) == (200, "application/json")
    [prediction] = json.loads(body)["predictions"]
    assert prediction["rings"] == pytest.approx(expected(model[1], [ROW])[0], abs=1e-4)
    assert prediction["age"] == pytest.approx(prediction["rings"] + 1.5, abs=1e-3)


@pytest.mark.parametrize(("content_type", "accept", "answer"), [
    ("text/csv", "application/json", "application/json"), ("application/json", "text/csv", "text/csv"),
    ("text/csv; charset=utf-8", "*/*", "text/csv"), (None, None, "text/csv"),
    ("text/csv", "text/html, application/json;q=0.9", "application/json")])
def test_accept_chooses_the_answer_format(server, content_type, accept, answer):
    body = ROW if content_type != "application/json" else json.dumps([ROW.split(",")])
    status, got, _ = server.invoke(body, content_type, accept)
    assert (status, got) == (200, answer)


BAD_INPUT = [
    # (id, content type, body, accept, status, row, field, message)
    ("wrong field count", "text/csv", "M,0.4,0.3", None, 400, 1, None, "expected 8 fields"),
    ("labelled row", "text/csv", ROW + ",15", None, 400, 1, None, "expected 8 fields"),
    ("non-numeric", "text/csv", ROW.replace("0.365", "big"), None, 400, 1, "diameter", "not a number"),
    ("NaN", "text/csv", ROW.replace("0.095", "NaN"), None, 400, 1, "height", "not finite"),
    ("inf", "text/csv", ROW.replace("0.15", "inf"), None, 400, 1, "shell_weight", "not finite"),
    ("unknown sex", "text/csv", ROW.replace("M", "X"), None, 400, 1, "sex", "unknown sex"),
    ("negative", "text/csv", ROW.replace("0.514", "-1"), None, 400, 1, "whole_weight", "negative"),
    ("second row bad", "text/csv", f"{ROW}\n{ROW.replace('0.101', '')}", None, 400, 2, "viscera_weight", "not a number"),
    ("empty body", "text/csv", "", None, 400, None, None, "empty body"),
    ("only whitespace", "text/csv", " \n\n", None, 400, None, None, "empty body"),
    ("only header", "text/csv", ",".join(FEATURES), None, 400, None, None, "no rows"),
    ("not UTF-8", "text/csv", b"M,0.4\xff", None, 400, None, None, "not UTF-8"),
    ("malformed JSON", "application/json", "{", None, 400, None, None, "malformed JSON"),
    ("JSON missing field", "application/json", json.dumps({"sex": "M"}), None, 400, 1, "length", "missing"),
    ("JSON boolean", "application/json", json.dumps([[*ROW.split(",")[:7], True]]), None, 400, 1, "shell_weight",
     "not a number"),
    ("JSON instances not a list", "application/json", json.dumps({"instances": 3}), None, 400, None, None,
     "must be a list"),
    ("JSON scalar row", "application/json", json.dumps({"instances": [ROW.split(","), 5]}), None, 400, 2, None,
     "a row must be"),
    ("JSON huge number", "application/json", json.dumps([["M", *["1e999"] * 7]]), None, 400, 1, "length",
     "not finite"),
    ("JSON integer too large for a float", "application/json", "[[\"M\", " + ", ".join(["1" + "0" * 400] * 7) + "]]",
     None, 400, 1, "length", "not finite"),
    ("unsupported content type", "text/plain", ROW, None, 415, None, None, "not supported"),
    ("unsupported accept", "text/csv", ROW, "image/png", 406, None, None, "cannot answer"),
    ("body over 6 MB", "text/csv", (ROW + "\n") * (MAX_BODY_BYTES // len(ROW) + 1), None, 413, None, None, "over the limit"),
]


@pytest.mark.parametrize(("content_type", "body", "accept", "status", "row", "field", "message"),
                         [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_gets_4xx_naming_row_and_field(server, content_type, body, accept, status, row, field, message):
    got, answer_type, answer = server.invoke(body, content_type, accept)
    error = json.loads(answer)
    assert (got, answer_type) == (status, "application/json"), error
    assert message in error["error"]
    assert (error.get("row"), error.get("field")) == (row, field)
    assert server.request("GET", "/ping")[0] == 200  # still serving
    assert server.invoke(ROW)[0] == 200


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/invocations", 405), ("POST", "/ping", 405),
                                                        ("GET", "/", 404), ("GET", "/predict", 404)])
def test_wrong_method_or_path(server, method, path, status):
    got, content_type, body = server.request(method, path)
    assert (got, content_type) == (status, "application/json") and json.loads(body)["error"]


csv_text = st.lists(st.lists(st.one_of(st.sampled_from(["M", "F", "I", "X", "", "nan", "-inf", "1e400", "0.5", "-1"]),
                                       st.text(max_size=8)), max_size=10).map(",".join), max_size=5).map("\n".join)
json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=9) | st.dictionaries(
                               st.sampled_from([*FEATURES, "instances", "x"]), inner, max_size=9), max_leaves=30)
valid_rows = st.lists(st.tuples(st.sampled_from("MFImf"), *[st.floats(0, 1e6) | st.integers(0, 10**30)] * 7).map(
    lambda row: ",".join(map(str, row))), min_size=1, max_size=5).map("\n".join)
bodies = st.one_of(st.binary(max_size=300), csv_text.map(str.encode), valid_rows.map(str.encode),
                   json_values.map(lambda v: json.dumps(v).encode()))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, content_type=st.sampled_from(["text/csv", "application/json", "application/x-npy", None]),
       accept=st.sampled_from([None, "*/*", "text/csv", "application/json", "text/html"]))
def test_fuzz_invocations_never_5xx(server, body, content_type, accept):
    status, answer_type, answer = server.invoke(body, content_type, accept)
    event(f"status {status}")
    assert status < 500, answer
    if status != 200:
        assert 400 <= status < 500 and answer_type == "application/json" and json.loads(answer)["error"]
    assert server.request("GET", "/ping")[0] == 200


def test_ping_answers_while_slow_clients_stall_and_they_get_408(model, monkeypatch):
    monkeypatch.setenv("MODEL_SERVER_BODY_TIMEOUT", "2")
    with running_server(model[0], workers=2) as server:
        stalled = []
        for _ in range(4):  # more stalled bodies than workers
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                         b"Content-Length: 1000\r\n\r\nM,0.455,0.365")
            stalled.append(sock)
        time.sleep(0.3)  # every partial body is in a worker by now
        started = time.monotonic()
        assert server.request("GET", "/ping")[0] == 200
        assert server.invoke(ROW)[0] == 200
        assert time.monotonic() - started < 2.0, "a stalled client must not hold up /ping"
        for sock in stalled:
            with sock:
                assert sock.recv(200).startswith(b"HTTP/1.1 408"), "a stalled body gets 408 after the timeout"


def test_gunicorn_runs_model_server_workers_workers(model):
    with running_server(model[0], workers=3) as server:
        deadline = time.monotonic() + 20
        while len(children := _children(server.process.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # the first worker answers /ping while the others still boot
        assert len(children) == 3
        assert server.invoke(ROW)[0] == 200


def _children(pid: int) -> list[int]:
    children = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return children


def test_serve_without_model_fails_with_reason(tmp_path):
    result = subprocess.run([sys.executable, str(APP), "serve"], env={**os.environ, "OPT_ML_ROOT": str(tmp_path)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "predictor.json" in (tmp_path / "output/failure").read_text()
