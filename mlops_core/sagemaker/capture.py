"""Reading an endpoint's data capture: SageMaker's JSON-lines files under
``{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl``, one record per invocation."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlops_core.aws import Clients, resolve
from mlops_core.s3 import list_keys, parse_s3_uri, s3_uri


@dataclass(frozen=True)
class CaptureRecord:
    """One captured invocation: request and response payloads (decoded text) and their metadata."""

    event_id: str | None
    inference_time: str | None
    input_data: str | None
    input_content_type: str | None
    output_data: str | None
    output_content_type: str | None
    raw: dict


def _decode(payload: dict | None) -> tuple[str | None, str | None]:
    if not payload:
        return None, None
    data = payload.get("data")
    if data is not None and payload.get("encoding") == "BASE64":
        data = base64.b64decode(data).decode("utf-8", errors="replace")
    return data, payload.get("observedContentType")


def parse_capture_line(line: str) -> CaptureRecord:
    """One line of a capture file as a CaptureRecord (ValueError when it is not JSON)."""
    raw: dict[str, Any] = json.loads(line)
    capture, metadata = raw.get("captureData", {}), raw.get("eventMetadata", {})
    input_data, input_type = _decode(capture.get("endpointInput"))
    output_data, output_type = _decode(capture.get("endpointOutput"))
    return CaptureRecord(metadata.get("eventId"), metadata.get("inferenceTime"), input_data, input_type,
                         output_data, output_type, raw)


def capture_files(destination_s3_uri: str, endpoint_name: str, *, variant: str | None = None,
                  clients: Clients | None = None) -> list[str]:
    """S3 URIs of the endpoint's capture files (oldest first: the keys sort by hour)."""
    bucket, prefix = parse_s3_uri(destination_s3_uri)
    where = s3_uri(bucket, prefix, endpoint_name, variant or "") + "/"
    return sorted(s3_uri(bucket, o["Key"]) for o in list_keys(where, clients=clients) if o["Key"].endswith(".jsonl"))


def read_capture(destination_s3_uri: str, endpoint_name: str, *, variant: str | None = None,
                 clients: Clients | None = None) -> Iterator[CaptureRecord]:
    """Every captured invocation of ``endpoint_name`` (optionally one variant), oldest file first."""
    s3 = resolve(clients).s3
    for uri in capture_files(destination_s3_uri, endpoint_name, variant=variant, clients=clients):
        bucket, key = parse_s3_uri(uri)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        yield from (parse_capture_line(line) for line in body.splitlines() if line.strip())
