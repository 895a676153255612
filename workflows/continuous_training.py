"""Continuous training: merge new survey files into a new dataset version, then start a release.

Layout under ``s3://{bucket}/{model}/data/``:

- ``incoming/``: new survey files (CSV, the 9 abalone columns, optional header) land here;
- ``current/``: the training dataset of the next release (every file in it);
- ``versions/{n}/{model}.csv``: dataset version n, immutable once the manifest names it;
- ``quarantine/{file}-{etag}.rejected.csv``: the rows of a file that break the schema, with the reason;
  ``.duplicates.csv``: its rows already in the dataset (dropped from it, kept here); ``.malformed``: the whole
  file when it is not readable CSV at all (the reason is in the manifest), while the batch's other files go on;
- ``manifest.json``: every ingested file (key, ETag, counts), the current version and the
  releases started for it, so the same file is never ingested twice.

Rows are validated with the container's own schema (``model_container.schema``), so training and
ingestion agree. A run takes a lock object (S3 conditional write) so that two runs never interleave,
and is safe to repeat after a crash at any point: the manifest is written after the new version and
before ``current/`` is replaced, and each run first brings ``current/`` and the releases up to date
with the manifest. A release is started with a client request token derived from the dataset
version, so it is started once. Everything is held in memory: fine for survey-sized data (the abalone
dataset is 190 kB); beyond a few GB the merge belongs in a Spark job (Glue or EMR Serverless).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, error_code, is_not_found, resolve
from mlops_core.errors import AwsResourceError
from mlops_core.logs import get_logger
from mlops_core.s3 import list_keys, s3_uri
from model_container.schema import is_header, validate_row

LOCK_STALE_AFTER = dt.timedelta(hours=1)
CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412")
Starter = Callable[..., str]
log = get_logger("continuous_training")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DataLayout:
    """Keys of one model's datasets in its bucket."""

    bucket: str
    model: str

    def key(self, *parts: str) -> str:
        return "/".join((self.model, "data", *parts))

    def uri(self, *parts: str) -> str:
        return s3_uri(self.bucket, self.key(*parts))

    @property
    def manifest(self) -> str:
        return self.key("manifest.json")

    @property
    def current(self) -> str:
        return self.key("current", f"{self.model}.csv")

    def version(self, number: int) -> str:
        return self.key("versions", str(number), f"{self.model}.csv")

    def quarantine(self, source_key: str, etag: str, kind: str = "rejected.csv") -> str:
        """Where a file's rejected rows (``rejected.csv``), duplicates (``duplicates.csv``) or, when it is
        not readable at all, the whole file (``malformed``) are kept."""
        return self.key("quarantine", f"{PurePosixPath(source_key).name}-{etag.strip(chr(34))[:12]}.{kind}")


@dataclass
class IngestReport:
    """What one run did: the files it ingested, the dataset version (``rows`` when it made a new one) and
    the release it started."""

    files: list[dict] = field(default_factory=list)
    dataset_version: int = 0
    new_version: bool = False
    rows: int | None = None
    release: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _canonical(row: tuple) -> str:
    """One CSV line of a parsed row: whole numbers without a decimal point, others as Python prints them."""
    return ",".join(v if isinstance(v, str) else str(int(v)) if float(v).is_integer() else repr(v) for v in row)


def _lines(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each CSV row of ``text`` that is neither blank nor a header."""
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if fields and any(f.strip() for f in fields) and not is_header(fields):
            yield number, fields


class _Store:
    """The few S3 operations of a run, on one bucket."""

    def __init__(self, layout: DataLayout, clients: Clients):
        self.layout, self.clients, self.s3 = layout, clients, clients.s3

    def read(self, key: str) -> str:
        return self.s3.get_object(Bucket=self.layout.bucket, Key=key)["Body"].read().decode("utf-8", "replace")

    def write(self, key: str, text: str, content_type: str = "text/csv", **conditions: str) -> dict:
        return self.s3.put_object(Bucket=self.layout.bucket, Key=key, Body=text.encode(), ContentType=content_type,
                                  **conditions)

    def objects(self, *parts: str) -> list[dict]:
        prefix = self.layout.uri(*parts) + "/"
        return [o for o in list_keys(prefix, clients=self.clients) if not o["Key"].endswith("/")]

    def read_manifest(self) -> dict:
        try:
            return json.loads(self.read(self.layout.manifest))
        except ClientError as exc:
            if not is_not_found(exc):
                raise
        return {"dataset_version": 0, "current": None, "released_version": 0, "files": [], "releases": []}

    def write_manifest(self, manifest: dict) -> None:
        self.write(self.layout.manifest, json.dumps(manifest, indent=1), "application/json")


@contextmanager
def _lock(store: _Store, now: Callable[[], dt.datetime]) -> Iterator[None]:
    """Hold ``data/.lock`` (created with If-None-Match); a lock older than LOCK_STALE_AFTER is taken over.

    The lock is released with a delete conditional on its ETag: a run whose stale lock another run took
    over leaves that run's lock in place."""
    key, owner = store.layout.key(".lock"), str(uuid.uuid4())
    try:
        held_by_us = store.write(key, owner, "text/plain", IfNoneMatch="*")["ETag"]
    except ClientError as exc:
        if error_code(exc) not in CONFLICT_CODES:
            raise
        held = store.s3.head_object(Bucket=store.layout.bucket, Key=key)
        if now() - held["LastModified"] < LOCK_STALE_AFTER:
            raise AwsResourceError(store.layout.uri(".lock"), "lock", "another continuous-training run holds it "
                                   f"since {held['LastModified'].isoformat()}",
                                   "wait for it to finish, or delete the lock object if that run died") from exc
        log.warning("stale_lock_taken_over", lock=key, since=held["LastModified"].isoformat())
        held_by_us = store.write(key, owner, "text/plain", IfMatch=held["ETag"])["ETag"]
    try:
        yield
    finally:
        try:
            store.s3.delete_object(Bucket=store.layout.bucket, Key=key, IfMatch=held_by_us)
        except ClientError as exc:
            if error_code(exc) not in CONFLICT_CODES and not is_not_found(exc):
                raise
            log.warning("lock_taken_over_meanwhile", lock=key, hint="another run took this run's lock over as stale; "
                        "it is left in place for that run")


def _sync_current(store: _Store, manifest: dict) -> None:
    """Make ``current/`` hold exactly the manifest's dataset version (repairs a run that stopped half-way)."""
    if not manifest.get("current"):
        return
    layout, bucket = store.layout, store.layout.bucket
    version_etag = store.s3.head_object(Bucket=bucket, Key=manifest["current"])["ETag"]
    present = store.objects("current")
    if [(o["Key"], o["ETag"]) for o in present] == [(layout.current, version_etag)]:
        return
    store.s3.copy_object(Bucket=bucket, Key=layout.current, CopySource={"Bucket": bucket, "Key": manifest["current"]})
    for stale in (o["Key"] for o in present if o["Key"] != layout.current):
        store.s3.delete_object(Bucket=bucket, Key=stale)
    log.info("current_dataset_replaced", version=manifest["dataset_version"], key=layout.current)


def _start_pending_release(store: _Store, manifest: dict, pipeline_name: str | None, start: Starter | None,
                           clients: Clients) -> str | None:
    """Start the release of the newest dataset version unless one was started for it; record it."""
    version = manifest["dataset_version"]
    if not pipeline_name or version <= manifest.get("released_version", 0):
        return None
    start = start or _default_starter()
    token = f"{store.layout.model}-dataset-v{version}"[:128]
    execution_id = start(pipeline_name, clients=clients, client_request_token=token)
    manifest["releases"].append({"dataset_version": version, "pipeline": pipeline_name,
                                 "execution_id": execution_id, "started_at": _now()})
    manifest["released_version"] = version
    store.write_manifest(manifest)
    log.info("release_started", pipeline=pipeline_name, execution_id=execution_id, dataset_version=version)
    return execution_id


def _default_starter() -> Starter:
    from mlops_core.codepipeline import start_pipeline_execution

    return start_pipeline_execution


def _ingest_file(store: _Store, obj: dict, seen: set, added: list[str]) -> dict:
    """Validate one survey file: new rows go to ``added``, bad rows and duplicates beside the quarantine, a file
    that is not readable CSV to the quarantine whole; returns its manifest entry."""
    source, layout = obj["Key"], store.layout
    entry = {"key": source, "etag": obj["ETag"], "ingested_at": _now(), "added": 0, "duplicates": 0,
             "rejected": 0, "quarantine": None, "duplicates_file": None, "malformed": None}
    try:
        lines = list(_lines(store.read(source)))
    except csv.Error as error:
        entry["malformed"] = f"not readable as CSV: {error}"
        entry["quarantine"] = layout.quarantine(source, obj["ETag"], "malformed")
        store.s3.copy_object(Bucket=layout.bucket, Key=entry["quarantine"],
                             CopySource={"Bucket": layout.bucket, "Key": source})
        log.warning("file_quarantined", file=source, reason=entry["malformed"], quarantine=entry["quarantine"])
        return entry
    rejected, duplicates = [], []
    for number, fields in lines:
        parsed = validate_row(fields, number)
        if isinstance(parsed, str):
            rejected.append((source, number, parsed, ",".join(fields)))
        elif parsed in seen:
            duplicates.append((source, number, ",".join(fields)))
        else:
            seen.add(parsed)
            added.append(_canonical(parsed))
            entry["added"] += 1
    entry["rejected"], entry["duplicates"] = len(rejected), len(duplicates)
    if rejected:
        entry["quarantine"] = _write_rows(store, layout.quarantine(source, obj["ETag"]),
                                          ("file", "line", "reason", "row"), rejected)
        log.warning("rows_quarantined", file=source, rows=len(rejected), quarantine=entry["quarantine"])
    if duplicates:
        entry["duplicates_file"] = _write_rows(store, layout.quarantine(source, obj["ETag"], "duplicates.csv"),
                                               ("file", "line", "row"), duplicates)
    return entry


def _write_rows(store: _Store, key: str, header: tuple[str, ...], rows: list[tuple]) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([header, *rows])
    store.write(key, text.getvalue())
    return key


def _current_rows(store: _Store) -> tuple[list[str], set]:
    """The lines of the current dataset (every file under ``current/``) and their parsed rows."""
    lines, seen = [], set()
    for obj in store.objects("current"):
        for number, fields in _lines(store.read(obj["Key"])):
            parsed = validate_row(fields, number)
            lines.append(",".join(fields))
            seen.add(parsed if not isinstance(parsed, str) else ",".join(fields))
    return lines, seen


def ingest(bucket: str, model: str, *, pipeline_name: str | None = None, start_release: Starter | None = None,
           clients: Clients | None = None, now: Callable[[], dt.datetime] | None = None) -> IngestReport:
    """Ingest the new files of ``data/incoming/`` into a new dataset version and start its release.

    ``pipeline_name`` None merges without starting a release. ``start_release`` (default
    ``mlops_core.codepipeline.start_pipeline_execution``) is called as
    ``start_release(pipeline_name, clients=..., client_request_token=...)`` and returns the execution id.
    """
    clients = resolve(clients)
    store = _Store(DataLayout(bucket, model), clients)
    report = IngestReport()
    with _lock(store, now or (lambda: dt.datetime.now(dt.timezone.utc))):
        manifest = store.read_manifest()
        _sync_current(store, manifest)
        report.release = _start_pending_release(store, manifest, pipeline_name, start_release, clients)
        done = {(f["key"], f["etag"]) for f in manifest["files"]}
        new = [o for o in store.objects("incoming") if (o["Key"], o["ETag"]) not in done]
        if new:
            lines, seen = _current_rows(store)
            added: list[str] = []
            report.files = [_ingest_file(store, obj, seen, added) for obj in new]
            if added:
                version = manifest["dataset_version"] + 1
                store.write(store.layout.version(version), "\n".join(lines + added) + "\n")
                manifest.update(dataset_version=version, current=store.layout.version(version))
                report.new_version, report.rows = True, len(lines) + len(added)
                log.info("dataset_version_created", version=version, rows=len(lines) + len(added), added=len(added))
            for entry in report.files:
                entry["dataset_version"] = manifest["dataset_version"] if entry["added"] else None
            manifest["files"].extend(report.files)
            store.write_manifest(manifest)
            _sync_current(store, manifest)
            report.release = _start_pending_release(store, manifest, pipeline_name, start_release,
                                                    clients) or report.release
        report.dataset_version = manifest["dataset_version"]
    return report


def run_from_environment(**overrides: Any) -> dict:
    """Entry point for schedulers (Airflow, a CodeBuild project on an EventBridge schedule).

    Reads MODEL_NAME, BUCKET_NAME, PIPELINE_NAME (optional: no release) and AWS_REGION; keyword
    arguments override them. Returns the report as a dict.
    """
    from mlops_core.config import load_config

    config = load_config(("model_name", "bucket_name"), overrides)
    report = ingest(config.bucket_name, config.model_name, pipeline_name=config.pipeline_name,
                    clients=Clients(region=config.aws_region))
    return report.to_dict()
