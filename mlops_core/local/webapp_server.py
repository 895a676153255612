"""The Age Calculator on 127.0.0.1: the static page and the same API contract as API Gateway's (see
``mlops_core.webapp``), a thin proxy to a local endpoint through ``invoke_endpoint``.

``GET /`` serves the page (its ``config.js`` says the API is on the same origin); ``POST /predict`` checks the
content type (415) and size (413), passes the body unchanged to the endpoint and answers its predictions (200),
the container's refusal of a bad row (400, its JSON message), or 502 when the endpoint cannot answer.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops_core.aws import Clients, resolve
from mlops_core.logs import get_logger
from mlops_core.webapp import ACCEPTED_TYPES, MAX_BODY_BYTES, site_files

log = get_logger("webapp")
JSON = "application/json"


def refusal(error: ClientError) -> tuple[int, bytes]:
    """API Gateway's mapping of an InvokeEndpoint error: the container's 4xx message as 400, else 502."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
    original = error.response.get("OriginalMessage") or error.response.get("Error", {}).get("OriginalMessage")
    if 400 <= status < 500:
        message = error.response.get("Error", {}).get("Message", str(error))
        return 400, (original.encode() if original else json.dumps({"error": message}).encode())
    return 502, json.dumps({"error": f"the model endpoint did not answer: {error}"}).encode()


class WebappServer:
    """The page and ``POST /predict`` for ``endpoint`` on 127.0.0.1 (``port`` 0: a free one), in a thread."""

    def __init__(self, endpoint: str, *, clients: Clients | None = None, port: int = 0):
        self.endpoint = endpoint
        self.clients = resolve(clients)
        self.files = site_files("")
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/"

    def start(self) -> WebappServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="webapp", daemon=True)
        self._thread.start()
        log.info("serving", url=self.url, endpoint=self.endpoint)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join()

    def __enter__(self) -> WebappServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def predict(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        """The endpoint's answer to ``body`` as (status, JSON body), errors mapped as API Gateway maps them."""
        try:
            answer = self.clients.sagemaker_runtime.invoke_endpoint(
                EndpointName=self.endpoint, ContentType=content_type, Accept=JSON, Body=body)
            return 200, answer["Body"].read()
        except ClientError as error:
            return refusal(error)
        except BotoCoreError as error:
            return 502, json.dumps({"error": f"the model endpoint did not answer: {error}"}).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "AgeCalculator"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                pass  # no line per request

            def _send(self, status: int, body: bytes, content_type: str = JSON) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: HTTPStatus, message: str) -> None:
                self._send(status, json.dumps({"error": message}).encode())

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                name = self.path.split("?", 1)[0].lstrip("/") or "index.html"
                if name not in server.files:
                    return self._error(HTTPStatus.NOT_FOUND, f"no such page: /{name}")
                self._send(200, *server.files[name])

            do_HEAD = do_GET  # noqa: N815

            def do_OPTIONS(self) -> None:  # noqa: N802
                self.send_response(204)
                self.send_header("Allow", "OPTIONS, POST")
                self.send_header("Access-Control-Allow-Methods", "OPTIONS,POST")
                self.send_header("Access-Control-Allow-Headers", "Content-Type,Accept")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                if self.path.split("?", 1)[0] != "/predict":
                    return self._error(HTTPStatus.NOT_FOUND, f"no such resource: {self.path}")
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if content_type not in ACCEPTED_TYPES:
                    return self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"content type {content_type or 'none'!r} "
                                       f"is not supported; send {' or '.join(ACCEPTED_TYPES)}")
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    return self._error(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
                if length > MAX_BODY_BYTES:
                    self.close_connection = True
                    return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                       f"body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
                if length <= 0:
                    return self._error(HTTPStatus.BAD_REQUEST, "empty body: send at least one row")
                self._send(*server.predict(self.rfile.read(length), content_type))

        return Handler
