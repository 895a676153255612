"""S3: URIs, JSON objects, listing and uploads used across the release."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, error_code, is_not_found, partition_of, resolve
from mlops_core.ensure import Action, Ensured, contains, normalize_document, result
from mlops_core.errors import AwsResourceError


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


def read_text(uri: str, *, clients: Clients | None = None) -> str:
    bucket, key = parse_s3_uri(uri)
    return resolve(clients).s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def read_json(uri: str, *, clients: Clients | None = None) -> Any:
    return json.loads(read_text(uri, clients=clients))


def read_json_if_exists(uri: str, *, clients: Clients | None = None) -> Any:
    """The JSON object at ``uri``, or None when there is none (listed first: S3 answers 403, not 404, for a
    missing key to a caller without s3:ListBucket or under a policy that denies it)."""
    if not any(item["Key"] == parse_s3_uri(uri)[1] for item in list_keys(uri, clients=clients)):
        return None
    return read_json(uri, clients=clients)


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


# Buckets: ensure (versioned, encrypted, private, TLS only, tagged), empty and delete.

def tls_only_policy(bucket: str, partition: str = "aws") -> dict:
    """A bucket policy denying every request that does not use TLS."""
    arn = f"arn:{partition}:s3:::{bucket}"
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


def encryption_configuration(kms_key_arn: str | None = None) -> dict:
    """Default encryption: SSE-S3, or SSE-KMS with a bucket key when ``kms_key_arn`` is given."""
    default = ({"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_arn} if kms_key_arn
               else {"SSEAlgorithm": "AES256"})
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": bool(kms_key_arn)}]}


PUBLIC_ACCESS_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                       "RestrictPublicBuckets": True}


def _read(call: Callable[[], Any], *missing_codes: str) -> Any:
    """``call()``, or None when S3 answers that the configuration or bucket does not exist."""
    try:
        return call()
    except ClientError as exc:
        if error_code(exc) in missing_codes or is_not_found(exc):
            return None
        raise


def bucket_exists(bucket: str, *, clients: Clients | None = None) -> bool:
    """True if the bucket exists and is ours; AwsResourceError if another account owns the name."""
    try:
        resolve(clients).s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        if is_not_found(exc):
            return False
        if error_code(exc) in ("403", "AccessDenied"):
            raise AwsResourceError(f"bucket {bucket}", "head", "the name belongs to another account or "
                                   "access is denied", "choose another BUCKET_NAME") from exc
        raise


def merge_policy(current: dict | None, ours: dict) -> dict:
    """``current`` (a policy document, or None) with ``ours``'s statements put in by ``Sid``: a statement with
    the same Sid is replaced where it stands, a new one appended, every other statement kept as it is."""
    if not current:
        return ours
    wanted = {statement["Sid"]: statement for statement in ours["Statement"]}
    kept = [wanted.pop(statement.get("Sid"), statement) for statement in current.get("Statement", [])]
    return {**current, "Statement": kept + list(wanted.values())}


def _bucket_settings(s3: Any, bucket: str, kms_key_arn: str | None, tags: Mapping[str, str],
                     tls_only: bool, partition: str, statements: Sequence[dict] = (),
                     ) -> dict[str, tuple[Callable[[], Any], Any, Callable[[], Any]]]:
    """label -> (read the current value, the desired value or a function giving it, write the desired value)."""
    encryption = encryption_configuration(kms_key_arn)
    current_policy = functools.cache(
        lambda: _read(lambda: normalize_document(s3.get_bucket_policy(Bucket=bucket)["Policy"])))
    ours = {"Version": "2012-10-17", "Statement": [
        *(tls_only_policy(bucket, partition)["Statement"] if tls_only else []), *statements]}

    def policy() -> dict:  # ours merged into what is there (read once, and only when needed)
        return normalize_document(merge_policy(current_policy(), ours))

    def write_tags() -> None:  # keep tags that others set
        merged = {**bucket_tags(bucket, s3=s3), **tags}
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in merged.items()]})

    settings = {
        "versioning": (lambda: s3.get_bucket_versioning(Bucket=bucket), {"Status": "Enabled"},
                       lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})),
        "encryption": (lambda: _read(lambda: s3.get_bucket_encryption(Bucket=bucket)[
            "ServerSideEncryptionConfiguration"], "ServerSideEncryptionConfigurationNotFoundError"), encryption,
                       lambda: s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=encryption)),
        "public access block": (
            lambda: _read(lambda: s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
                          "NoSuchPublicAccessBlockConfiguration"), PUBLIC_ACCESS_BLOCK,
            lambda: s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)),
        "policy": (current_policy, policy, lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy()))),
        "tags": (lambda: bucket_tags(bucket, s3=s3), dict(tags), write_tags),
    }
    if not ours["Statement"]:
        del settings["policy"]
    return settings


def ensure_bucket(bucket: str, *, kms_key_arn: str | None = None, tags: Mapping[str, str] | None = None,
                  tls_only: bool = True, policy_statements: Sequence[dict] = (), dry_run: bool = False,
                  clients: Clients | None = None) -> Ensured:
    """Create or fix a bucket: versioning, default encryption, public access block, TLS-only policy, tags.

    The TLS-only statement and ``policy_statements`` (each with a Sid) are merged into the bucket policy by their
    Sid; statements others wrote are kept.

    ``tls_only=False`` leaves the bucket policy alone: only for moto, whose bucket policy check ignores
    conditions and so turns the TLS-only deny into a deny of every object request.
    """
    clients = resolve(clients)
    s3, partition = clients.s3, partition_of(clients.region)
    created = not bucket_exists(bucket, clients=clients)
    if created and not dry_run:
        location = ({} if clients.region == "us-east-1"
                    else {"CreateBucketConfiguration": {"LocationConstraint": clients.region}})
        s3.create_bucket(Bucket=bucket, **location)
    changes = []
    for label, (read, desired, write) in _bucket_settings(s3, bucket, kms_key_arn, tags or {}, tls_only,
                                                          partition, policy_statements).items():
        if created or not contains(read(), desired() if callable(desired) else desired):
            changes.append(label)
            if not dry_run:
                write()
    return result("s3 bucket", bucket, created=created, changes=None if created else changes,
                  arn=f"arn:{partition}:s3:::{bucket}", dry_run=dry_run)


def bucket_tags(bucket: str, *, s3: Any = None, clients: Clients | None = None) -> dict[str, str]:
    """The bucket's tags (empty when it has none)."""
    s3 = s3 or resolve(clients).s3
    return {t["Key"]: t["Value"] for t in _read(lambda: s3.get_bucket_tagging(Bucket=bucket)["TagSet"],
                                                "NoSuchTagSet") or []}


def empty_bucket(bucket: str, *, batch: int = 1000, clients: Clients | None = None) -> int:
    """Delete every object version and delete marker (``batch`` per call, at most 1000); returns the count.

    Lists the first page again after each batch (rather than paging on) so deletions cannot shift pages.
    """
    s3 = resolve(clients).s3
    deleted = 0
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=batch)
        entries = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in page.get("Versions", []) + page.get("DeleteMarkers", [])][:batch]
        if not entries:
            return deleted
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": entries, "Quiet": True})
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise AwsResourceError(f"bucket {bucket}", "empty", f"{len(answer['Errors'])} objects not deleted, "
                                   f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}")
        deleted += len(entries)


def require_bucket_tags(bucket: str, tags: Mapping[str, str], *, clients: Clients | None = None) -> bool:
    """Whether the bucket exists; AwsResourceError when it exists without ``tags`` (someone else's bucket)."""
    clients = resolve(clients)
    if not bucket_exists(bucket, clients=clients):
        return False
    found = bucket_tags(bucket, clients=clients)
    missing = {k: v for k, v in tags.items() if found.get(k) != v}
    if missing:
        wanted = ", ".join(f"{k}={v}" for k, v in missing.items())
        raise AwsResourceError(f"bucket {bucket}", "delete", f"it has no tag {wanted}, so it was not created for "
                               "this project", "check the bucket name; a bucket is only deleted by the project "
                               "that created it")
    return True


def delete_bucket(bucket: str, *, required_tags: Mapping[str, str] | None = None, delete_objects: bool = False,
                  clients: Clients | None = None) -> Ensured:
    """Delete the bucket; ABSENT when it is already gone.

    ``required_tags`` (e.g. ``{"project": name}``): refuse a bucket without them. A bucket holding objects
    is kept (UNCHANGED, ``details["kept"]`` says why) unless ``delete_objects``: then its policy is dropped
    (a deny in it must not block the deletes), every object version deleted, and the bucket.
    """
    clients = resolve(clients)
    if not require_bucket_tags(bucket, required_tags or {}, clients=clients):
        return Ensured(Action.ABSENT, "s3 bucket", bucket)
    if not delete_objects:
        held = clients.s3.list_object_versions(Bucket=bucket, MaxKeys=1)
        if held.get("Versions") or held.get("DeleteMarkers"):
            return Ensured(Action.UNCHANGED, "s3 bucket", bucket,
                           details={"kept": "it holds data: delete it with delete_objects (--delete-data)"})
    clients.s3.delete_bucket_policy(Bucket=bucket)
    objects = empty_bucket(bucket, clients=clients)
    clients.s3.delete_bucket(Bucket=bucket)
    return Ensured(Action.DELETED, "s3 bucket", bucket, details={"objects_deleted": objects})


def ensure_object(bucket: str, key: str, body: bytes, *, content_type: str, dry_run: bool = False,
                  clients: Clients | None = None) -> Ensured:
    """Put ``body`` at ``key`` unless the object there already holds it (its ``sha256`` metadata says so)."""
    import hashlib

    s3, digest = resolve(clients).s3, hashlib.sha256(body).hexdigest()
    current = _read(lambda: s3.head_object(Bucket=bucket, Key=key))
    same = current is not None and current.get("Metadata", {}).get("sha256") == digest \
        and current.get("ContentType") == content_type
    if not same and not dry_run:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata={"sha256": digest})
    return result("s3 object", s3_uri(bucket, key), created=current is None, changes=None if same else ["content"],
                  dry_run=dry_run)
