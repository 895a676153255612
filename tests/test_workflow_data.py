import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlops_core.errors import ConfigError
from workflows.data import DATA_ENV, abalone_data

ROWS = b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\n"


@pytest.fixture
def uci():
    """A loopback stand-in for the UCI server; counts downloads."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(ROWS)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/abalone.data", hits
    server.shutdown()


def test_explicit_path_wins(tmp_path, monkeypatch):
    data = tmp_path / "mine.data"
    data.write_bytes(ROWS)
    monkeypatch.setenv(DATA_ENV, "/nonexistent")
    assert abalone_data(data) == data


def test_environment_variable_and_missing_file(tmp_path, monkeypatch):
    data = tmp_path / "env.data"
    data.write_bytes(ROWS)
    monkeypatch.setenv(DATA_ENV, str(data))
    assert abalone_data() == data
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "missing.data"))
    with pytest.raises(ConfigError, match="missing.data is not a file"):
        abalone_data()


def test_download_once_then_cached(tmp_path, monkeypatch, uci):
    monkeypatch.delenv(DATA_ENV, raising=False)
    url, hits = uci
    first = abalone_data(cache_dir=tmp_path, url=url)
    second = abalone_data(cache_dir=tmp_path, url=url)
    assert first == second and first.read_bytes() == ROWS and len(hits) == 1


def test_offline_gives_a_clear_error_and_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(ConfigError, match="pass --data PATH or set ABALONE_DATA=PATH"):
        abalone_data(cache_dir=tmp_path, url=f"http://127.0.0.1:{closed_port}/abalone.data", timeout=5)
    assert os.listdir(tmp_path) == []
