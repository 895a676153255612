"""An endpoint's data capture: SageMaker's JSON-lines files under
``{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl``, one record per invocation. ``read_capture`` reads
them; ``write_capture`` writes one the way SageMaker does (for stand-ins of an endpoint: the embedded AWS,
the test kit)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import uuid
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
    inference_id: str | None = None  # the InferenceId the caller gave invoke_endpoint (ground truth refers to it)


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
                         output_data, output_type, raw, metadata.get("inferenceId"))


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


def capture_part(data: bytes, content_type: str, mode: str, header: dict) -> dict:
    """One side of a capture record, encoded the way SageMaker encodes it."""
    base_type = content_type.split(";")[0].strip()
    if base_type in header.get("CsvContentTypes", ["text/csv"]):
        encoding, text = "CSV", data.decode(errors="replace")
    elif base_type in header.get("JsonContentTypes", ["application/json"]):
        encoding, text = "JSON", data.decode(errors="replace")
    else:
        encoding, text = "BASE64", base64.b64encode(data).decode()
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


def write_capture(s3: Any, endpoint: str, variant: str, config: dict | None, request: bytes, request_type: str,
                  response: bytes, response_type: str, inference_id: str | None = None) -> str | None:
    """Write one invocation's capture record as SageMaker does under the endpoint config's ``config``
    (its DataCaptureConfig: sampling, modes, content types, destination); its S3 key, or None when not captured."""
    if not config or not config.get("EnableCapture", False):
        return None
    if random.uniform(0, 100) >= config.get("InitialSamplingPercentage", 100):
        return None
    modes = {option["CaptureMode"] for option in config.get("CaptureOptions", [])}
    header = config.get("CaptureContentTypeHeader", {})
    capture: dict[str, Any] = {}
    if "Input" in modes:
        capture["endpointInput"] = capture_part(request, request_type, "INPUT", header)
    if "Output" in modes:
        capture["endpointOutput"] = capture_part(response, response_type, "OUTPUT", header)
    when = dt.datetime.now(dt.timezone.utc)
    metadata = {"eventId": str(uuid.uuid4()), **({"inferenceId": inference_id} if inference_id else {}),
                "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
    event = {"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"}
    bucket, prefix = parse_s3_uri(config["DestinationS3Uri"])
    key = "/".join(p for p in (prefix.strip("/"), endpoint, variant, when.strftime("%Y/%m/%d/%H"),
                               f"{when.strftime('%M-%S-%f')[:-3]}-{uuid.uuid4()}.jsonl") if p)
    s3.put_object(Bucket=bucket, Key=key, Body=(json.dumps(event) + "\n").encode())
    return key

