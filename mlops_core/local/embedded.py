"""Embedded AWS: moto's server on 127.0.0.1, on a free port, for one run (needs the ``local`` extra)."""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_SESSION_TOKEN": "testing"}


class EmbeddedAws:
    """moto's server in a background thread of this process; ``env`` points boto3 clients at it."""

    def __init__(self, region: str = "us-east-1", port: int = 0, recording: str | Path | None = None):
        from moto.server import ThreadedMotoServer

        self.region = region
        self.recording = Path(recording) if recording else None
        self._server: Any = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint_url = ""

    def start(self) -> EmbeddedAws:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.reset()  # moto keeps its state in this process's memory: a new server starts from a new account
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
        if self.recording:
            from moto.moto_api import recorder

            recorder.stop_recording()
        self._server.stop()

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that send every boto3 client (in this or a child process) here."""
        return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region}

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
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
