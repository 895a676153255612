"""S3: URIs, JSON objects, listing and uploads used across the release."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlops_core.aws import Clients, resolve


def s3_uri(bucket: str, *keys: str) -> str:
    """``s3://bucket/key/parts`` with single slashes between the parts."""
    key = "/".join(k.strip("/") for k in keys if k and k.strip("/"))
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ("bucket", "key"); ValueError for anything else."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an S3 URI: {uri!r} (expected s3://bucket/key)")
    return parsed.netloc, parsed.path.lstrip("/")


def read_json(uri: str, *, clients: Clients | None = None) -> Any:
    bucket, key = parse_s3_uri(uri)
    body = resolve(clients).s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


def write_json(uri: str, value: Any, *, clients: Clients | None = None) -> None:
    bucket, key = parse_s3_uri(uri)
    resolve(clients).s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(value, indent=2).encode(),
                                   ContentType="application/json")


def list_keys(uri: str, *, clients: Clients | None = None) -> Iterator[dict]:
    """Every object under the ``uri`` prefix (all pages), as ListObjectsV2 ``Contents`` entries."""
    bucket, prefix = parse_s3_uri(uri)
    paginator = resolve(clients).s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def upload_file(path: str | Path, uri: str, *, clients: Clients | None = None) -> str:
    bucket, key = parse_s3_uri(uri)
    resolve(clients).s3.upload_file(str(path), bucket, key)
    return uri


def download_file(uri: str, path: str | Path, *, clients: Clients | None = None) -> Path:
    bucket, key = parse_s3_uri(uri)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    resolve(clients).s3.download_file(bucket, key, str(path))
    return Path(path)
