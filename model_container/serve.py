"""serve: SageMaker's hosting contract as a plain WSGI app run by gunicorn.

``GET /ping`` answers 200 once the model is loaded (the app only exists after loading it).
``POST /invocations`` takes raw rows ``sex,length,diameter,height,whole_weight,shucked_weight,
viscera_weight,shell_weight`` as ``text/csv`` (one row per line, optional header) or ``application/json``
(``{"instances": [row, ...]}``, a list of rows, or one row; a row is a list of the 8 values or an object
keyed by the feature names) and answers predicted rings: ``text/csv`` one value per line, or
``application/json`` ``{"predictions": [{"rings": r, "age": r + 1.5}, ...]}``, as asked by ``Accept``
(default: the request's type). Bad input gets a 4xx JSON body naming the row and the field; the hot path
is the numpy forward pass of :class:`~model_container.predictor.Predictor`, never ``model.predict``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable

from model_container import paths
from model_container.predictor import Predictor
from model_container.schema import FEATURES, RowError, is_header, parse_row

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's own invocation payload limit
BODY_TIMEOUT_S = 5.0  # a client that stops sending its body gets 408 after this many seconds of silence
DRAIN_BYTES = 8 * MAX_BODY_BYTES  # beyond this an oversized body is not read; the connection just closes
CSV, JSON = "text/csv", "application/json"
AGE_OFFSET = 1.5
JSON_HEADERS = [("Content-Type", JSON)]


class HttpError(Exception):
    """An answer other than 200: status line and a JSON body."""

    def __init__(self, status: str, message: str, **details):
        super().__init__(message)
        self.status, self.body = status, {"error": message, **details}


def _media_type(header: str | None) -> str:
    return (header or "").split(";")[0].strip().lower()


def parse_csv(text: str) -> list[tuple]:
    """Rows of a CSV body: blank lines skipped, a first line naming the columns treated as a header."""
    rows = []
    try:
        for line, fields in enumerate(csv.reader(text.splitlines()), start=1):
            if fields and not (line == 1 and is_header(fields)):
                rows.append(parse_row(fields, line, labelled=False))
    except csv.Error as error:
        raise HttpError("400 Bad Request", f"malformed CSV: {error}") from None
    return rows


def parse_json(document: object) -> list[tuple]:
    """Rows of a JSON body: {"instances": [...]}, a list of rows, or one row (list of values or object)."""
    if isinstance(document, dict) and "instances" in document:
        instances = document["instances"]
    elif isinstance(document, list) and document and all(isinstance(item, (list, dict)) for item in document):
        instances = document
    else:
        instances = [document]
    if not isinstance(instances, list):
        raise HttpError("400 Bad Request", '"instances" must be a list of rows')
    return [parse_row(_json_fields(instance, line), line, labelled=False)
            for line, instance in enumerate(instances, start=1)]


def _json_fields(instance: object, line: int) -> list:
    if isinstance(instance, list):
        return instance
    if isinstance(instance, dict):
        missing = next((name for name in FEATURES if name not in instance), None)
        if missing:
            raise RowError(line, missing, "missing")
        return [instance[name] for name in FEATURES]
    raise RowError(line, None, f"a row must be a list of {len(FEATURES)} values or an object keyed by "
                               f"{','.join(FEATURES)}")


PARSERS: dict[str, Callable[[str], list[tuple]]] = {CSV: parse_csv, JSON: lambda text: parse_json(json.loads(text))}


def render(rings: Iterable[float], media_type: str) -> bytes:
    """The answer body for predicted rings in the requested media type."""
    if media_type == CSV:
        return "".join(f"{value:.4f}\n" for value in rings).encode()
    return json.dumps({"predictions": [{"rings": round(value, 4), "age": round(value + AGE_OFFSET, 4)}
                                       for value in rings]}).encode()


def _answer_type(accept: str | None, content_type: str) -> str:
    for candidate in (accept or "*/*").split(","):
        media_type = _media_type(candidate)
        if media_type in PARSERS:
            return media_type
        if media_type in ("*/*", ""):
            return content_type
    raise HttpError("406 Not Acceptable", f"cannot answer in {accept!r}; supported: {CSV}, {JSON}")


def _read_body(environ: dict) -> bytes:
    """The request body; over MAX_BODY_BYTES a 413 (after draining up to DRAIN_BYTES so the client reads it);
    a body that stalls for MODEL_SERVER_BODY_TIMEOUT seconds (default 5) a 408, freeing the thread."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        raise HttpError("400 Bad Request", "invalid Content-Length") from None
    stream, sock = environ["wsgi.input"], environ.get("gunicorn.socket")
    timeout = float(os.environ.get("MODEL_SERVER_BODY_TIMEOUT") or BODY_TIMEOUT_S)
    if sock is not None:
        sock.settimeout(timeout)
    try:
        body = stream.read(min(length, MAX_BODY_BYTES + 1) if length >= 0 else MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            drained = len(body)
            while drained < DRAIN_BYTES and (chunk := stream.read(1 << 16)):
                drained += len(chunk)
            raise HttpError("413 Request Entity Too Large",
                            f"body of {max(length, drained)} bytes is over the limit of {MAX_BODY_BYTES}")
    except TimeoutError:
        raise HttpError("408 Request Timeout", f"the request body stalled for {timeout:g} s") from None
    finally:
        if sock is not None:
            sock.settimeout(None)
    return body


def invoke(predictor: Predictor, environ: dict) -> tuple[str, bytes]:
    """Parse, predict, render one /invocations request; raises HttpError for anything the client got wrong."""
    content_type = _media_type(environ.get("CONTENT_TYPE")) or CSV
    if content_type not in PARSERS:
        raise HttpError("415 Unsupported Media Type", f"content type {content_type!r} is not supported; "
                                                      f"send {CSV} or {JSON}")
    answer_type = _answer_type(environ.get("HTTP_ACCEPT"), content_type)
    body = _read_body(environ)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise HttpError("400 Bad Request", f"body is not UTF-8: {error}") from None
    if not text.strip():
        raise HttpError("400 Bad Request", "empty body: send at least one row")
    try:
        rows = PARSERS[content_type](text)
    except RowError as error:
        raise HttpError("400 Bad Request", str(error), **error.to_dict()) from None
    except (ValueError, RecursionError) as error:  # json.JSONDecodeError is a ValueError
        raise HttpError("400 Bad Request", f"malformed JSON: {error}") from None
    if not rows:
        raise HttpError("400 Bad Request", "no rows in the body (only a header or blank lines)")
    rings = predictor.predict(rows).tolist()
    return answer_type, render(rings, answer_type)


def make_app(predictor: Predictor) -> Callable:
    """The WSGI application serving ``predictor``."""

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        try:
            if path == "/ping":
                if method not in ("GET", "HEAD"):
                    raise HttpError("405 Method Not Allowed", "use GET /ping")
                status, headers, body = "200 OK", [("Content-Type", JSON)], b'{"status": "ok"}'
            elif path == "/invocations":
                if method != "POST":
                    raise HttpError("405 Method Not Allowed", "use POST /invocations")
                answer_type, body = invoke(predictor, environ)
                status, headers = "200 OK", [("Content-Type", answer_type)]
            else:
                raise HttpError("404 Not Found", f"no such path {path[:100]!r}; use /ping or /invocations")
        except HttpError as error:
            status, headers, body = error.status, JSON_HEADERS, json.dumps(error.body).encode()
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return app


def run() -> None:
    """The serve mode: load the model from ``model/`` (failing fast if it is broken), then run gunicorn."""
    predictor = Predictor.load(paths.model_dir())
    run_server(lambda: make_app(predictor))


def run_server(load_app: Callable[[], Callable], **overrides) -> None:
    """gunicorn on 0.0.0.0 (MODEL_SERVER_HOST) port 8080 (SAGEMAKER_BIND_TO_PORT): MODEL_SERVER_WORKERS
    workers (default: the cores, at most 2) of MODEL_SERVER_THREADS threads each (default 8), so a slow or
    stalled client holds one thread, never the /ping answer; MODEL_SERVER_TIMEOUT seconds (default 60)."""
    from gunicorn.app.base import BaseApplication

    options = {
        "bind": f"{os.environ.get('MODEL_SERVER_HOST', '0.0.0.0')}:{os.environ.get('SAGEMAKER_BIND_TO_PORT', '8080')}",
        "workers": int(os.environ.get("MODEL_SERVER_WORKERS") or min(os.cpu_count() or 1, 2)),
        "threads": int(os.environ.get("MODEL_SERVER_THREADS") or 8),
        "timeout": int(os.environ.get("MODEL_SERVER_TIMEOUT") or 60),
        "worker_class": "gthread",
        "errorlog": "-",
        "loglevel": os.environ.get("MODEL_SERVER_LOG_LEVEL", "info"),
        **overrides,
    }

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Callable:
            return load_app()

    Server().run()
