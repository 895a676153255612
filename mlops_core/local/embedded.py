"""Embedded AWS: the gateway (moto plus the local SageMaker runtime) served on 127.0.0.1 by a thread of this
process (needs the ``local`` extra). ``env`` is all a client needs: our scripts, a user's boto3, the AWS CLI.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops_core.errors import ConfigError
from mlops_core.local.gateway import DUMMY_CREDENTIALS, Gateway
from mlops_core.local.runtime import STATE_LABEL, LocalState, container_engine, kill_group, pid_alive

PROCESS_KEYS = ("runner_pid", "container_pid", "server_pid")
RECORD_KINDS = ("processing", "training", "endpoints")


class EmbeddedAws:
    """moto and the local runtime behind one gateway on 127.0.0.1 (``port`` 0: a free one).

    ``state_dir`` keeps the runtime's job and endpoint records (a temporary folder, removed on stop, when
    not given); with ``recording`` the AWS calls are recorded there and replayed at the next start, so a
    kept folder continues the same account. ``container`` (an app.py) and ``container_env`` reach every job
    and endpoint process.
    """

    def __init__(self, region: str = "us-east-1", port: int = 0, recording: str | Path | None = None,
                 state_dir: str | Path | None = None, container: str | Path | None = None,
                 container_env: dict[str, str] | None = None, engine: str = "process"):
        if engine not in ("process", "container"):
            raise ConfigError(f"engine {engine!r}: use process or container")
        if engine == "container" and container_engine() is None:
            raise ConfigError("the container engine needs Podman (or Docker), which this machine lacks: run "
                              "bin/container-engine to install and configure it")
        self.engine = engine
        self.region = region
        self.port = port
        self.recording = Path(recording) if recording else None
        self._temporary = state_dir is None
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="mlops-local-"))
        self.runtime = LocalState(self.state_dir / "runtime")
        self.gateway: Gateway | None = None
        self._container = str(container) if container else None
        self._container_env = dict(container_env or {})
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.endpoint_url = ""

    def start(self) -> EmbeddedAws:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self.gateway = Gateway(DomainDispatcherApplication(create_backend_app), self.runtime, self.region)
        self.gateway.container, self.gateway.container_env = self._container, self._container_env
        self.gateway.engine = self.engine
        self._server = make_server("127.0.0.1", self.port, self.gateway, threaded=True,
                                   request_handler=MotoRequestHandler)
        self.endpoint_url = self.gateway.endpoint_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        self._moto_reset()  # moto keeps its state in this process's memory: a new server starts from a new account
        if self.recording:
            self._resume_recording()
        return self

    def _resume_recording(self) -> None:
        """Replay the calls recorded by earlier runs (rebuilding their resources), then record this run's."""
        from moto.moto_api import recorder

        assert self.recording is not None
        self.recording.parent.mkdir(parents=True, exist_ok=True)
        recorder._location = str(self.recording)  # moto reads MOTO_RECORDER_FILEPATH only at import
        if self.recording.exists() and self.recording.stat().st_size:
            recorder.replay_recording(target_host=self.endpoint_url)
        recorder.start_recording()

    def stop(self) -> None:
        """Stop every job and endpoint process, then the server; a temporary state folder is removed."""
        self.stop_processes()
        if self.recording:
            from moto.moto_api import recorder

            recorder.stop_recording()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None
        if self._temporary:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that send every AWS client (in this or a child process) here."""
        return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region}

    def processes(self) -> list[int]:
        """The pids of every job, endpoint and runner process the runtime has recorded."""
        pids = []
        for kind in RECORD_KINDS:
            for path in (self.runtime.root / kind).glob("*.json"):
                record = self.runtime.read(kind, path.stem) or {}
                pids += [record[key] for key in PROCESS_KEYS if record.get(key)]
        return pids

    def stop_processes(self, timeout: float = 10.0) -> None:
        """Stop every process the runtime started and wait (at most ``timeout``) until they are gone."""
        pids = self.processes()
        for pid in pids:
            kill_group(pid)
        deadline = time.monotonic() + timeout
        while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        engine = container_engine() if self.engine == "container" else None
        if engine:  # a container whose engine client was stopped before it could remove it
            found = subprocess.run([engine, "ps", "-aq", "--filter", f"label={STATE_LABEL}={self.runtime.root}"],
                                   capture_output=True, text=True).stdout.split()
            if found:
                subprocess.run([engine, "rm", "-f", *found], capture_output=True)

    def reset(self) -> None:
        """Forget every resource: stop the runtime's processes, clear its records, reset moto."""
        self.stop_processes()
        shutil.rmtree(self.runtime.root, ignore_errors=True)
        self._moto_reset()

    def _moto_reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass

    @contextmanager
    def activated(self) -> Iterator[EmbeddedAws]:
        """Set ``env`` in os.environ for the duration of the block, restoring the previous values."""
        saved = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        try:
            yield self
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
