"""CloudFront: origin access controls and distributions from plain specs.

A distribution is found again by its ``Comment`` (the spec's name) and carries a hash of the configuration it was
given in the tag ``mlops:definition``: a re-run with the same spec reads and changes nothing (CloudFront describes a
configuration with every default filled in, so the hash, not a field-by-field comparison, says what changed).
Deleting one disables it first and waits until CloudFront has deployed that (minutes on AWS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_core.aws import Clients, resolve
from mlops_core.ensure import Action, Ensured, contains, definition_hash, result
from mlops_core.errors import AwsResourceError
from mlops_core.polling import StatusSpec, WaitPolicy, wait_for

DISTRIBUTION, OAC = "cloudfront distribution", "cloudfront origin access control"
DEFINITION_TAG = "mlops:definition"
DEPLOYED = StatusSpec("cloudfront distribution", lambda d: d.get("Distribution", {}).get("Status"),
                      frozenset({"Deployed"}), frozenset(), running=frozenset({"InProgress"}))
DELETE_POLICY = WaitPolicy(timeout=3600.0)


@dataclass(frozen=True)
class DistributionSpec:
    """A distribution: ``name`` (kept as its Comment) and its ``config``, a DistributionConfig without
    CallerReference and Comment."""

    name: str
    config: dict

    def distribution_config(self, caller_reference: str) -> dict:
        return {**self.config, "CallerReference": caller_reference, "Comment": self.name}


def _find(items: list[dict], key: str, name: str, kind: str) -> dict | None:
    found = [item for item in items if item.get(key) == name]
    if len(found) > 1:
        raise AwsResourceError(f"{kind} {name}", "find", f"{len(found)} have this name "
                               f"({', '.join(item['Id'] for item in found)})", "delete the extra ones")
    return found[0] if found else None


def find_origin_access_control(name: str, *, clients: Clients | None = None) -> dict | None:
    """The origin access control called ``name`` (its summary), or None."""
    pages = resolve(clients).cloudfront.get_paginator("list_origin_access_controls").paginate()
    items = [item for page in pages for item in page["OriginAccessControlList"].get("Items", [])]
    return _find(items, "Name", name, OAC)


def ensure_origin_access_control(name: str, *, origin_type: str = "s3", signing_behavior: str = "always",
                                 description: str = "", dry_run: bool = False,
                                 clients: Clients | None = None) -> Ensured:
    """An origin access control signing requests to the origin with SigV4; ``details["id"]`` is its id."""
    cloudfront = resolve(clients).cloudfront
    config = {"Name": name, "Description": description, "SigningProtocol": "sigv4",
              "SigningBehavior": signing_behavior, "OriginAccessControlOriginType": origin_type}
    current = find_origin_access_control(name, clients=clients)
    if current is None:
        created = None if dry_run else cloudfront.create_origin_access_control(OriginAccessControlConfig=config)
        return result(OAC, name, created=True, dry_run=dry_run,
                      id=created and created["OriginAccessControl"]["Id"])
    described = cloudfront.get_origin_access_control(Id=current["Id"])
    changes = [] if contains(described["OriginAccessControl"]["OriginAccessControlConfig"], config) else ["config"]
    if changes and not dry_run:
        cloudfront.update_origin_access_control(Id=current["Id"], IfMatch=described["ETag"],
                                                OriginAccessControlConfig=config)
    return result(OAC, name, changes=changes, dry_run=dry_run, id=current["Id"])


def delete_origin_access_control(name: str, *, clients: Clients | None = None) -> Ensured:
    """Delete the origin access control (no distribution may use it any more); ABSENT when there is none."""
    cloudfront = resolve(clients).cloudfront
    current = find_origin_access_control(name, clients=clients)
    if current is None:
        return Ensured(Action.ABSENT, OAC, name)
    etag = cloudfront.get_origin_access_control(Id=current["Id"])["ETag"]
    cloudfront.delete_origin_access_control(Id=current["Id"], IfMatch=etag)
    return Ensured(Action.DELETED, OAC, name)


def find_distribution(name: str, *, clients: Clients | None = None) -> dict | None:
    """The distribution whose Comment is ``name`` (its summary: Id, ARN, DomainName, Status), or None."""
    pages = resolve(clients).cloudfront.get_paginator("list_distributions").paginate()
    items = [item for page in pages for item in page["DistributionList"].get("Items", [])]
    return _find(items, "Comment", name, DISTRIBUTION)


def _tags(mapping: Mapping[str, str]) -> dict:
    return {"Items": [{"Key": key, "Value": value} for key, value in mapping.items()]}


def ensure_distribution(spec: DistributionSpec, *, tags: Mapping[str, str] | None = None, dry_run: bool = False,
                        clients: Clients | None = None) -> Ensured:
    """Create the distribution or bring it in line with ``spec``; ``details`` holds its ``id`` and ``domain``."""
    cloudfront = resolve(clients).cloudfront
    definition = definition_hash(spec.config, length=16)
    wanted_tags = {**(tags or {}), DEFINITION_TAG: definition}
    current = find_distribution(spec.name, clients=clients)
    if current is None:
        if dry_run:
            return result(DISTRIBUTION, spec.name, created=True, dry_run=True, id=None, domain=None)
        created = cloudfront.create_distribution_with_tags(DistributionConfigWithTags={
            "DistributionConfig": spec.distribution_config(f"{spec.name}-{definition}"),
            "Tags": _tags(wanted_tags)})["Distribution"]
        return result(DISTRIBUTION, spec.name, created=True, arn=created["ARN"], id=created["Id"],
                      domain=created["DomainName"])
    arn, changes = current["ARN"], []
    found_tags = {t["Key"]: t["Value"] for t in cloudfront.list_tags_for_resource(Resource=arn)["Tags"].get("Items", [])}
    if found_tags.get(DEFINITION_TAG) != definition:
        changes.append("config")
        if not dry_run:
            described = cloudfront.get_distribution_config(Id=current["Id"])
            reference = described["DistributionConfig"]["CallerReference"]
            cloudfront.update_distribution(Id=current["Id"], IfMatch=described["ETag"],
                                           DistributionConfig=spec.distribution_config(reference))
    if any(found_tags.get(key) != value for key, value in wanted_tags.items()):
        changes.append("tags")
        if not dry_run:
            cloudfront.tag_resource(Resource=arn, Tags=_tags(wanted_tags))
    return result(DISTRIBUTION, spec.name, changes=sorted(set(changes)), dry_run=dry_run, arn=arn, id=current["Id"],
                  domain=current["DomainName"])


def delete_distribution(name: str, *, policy: WaitPolicy = DELETE_POLICY, clients: Clients | None = None) -> Ensured:
    """Disable the distribution, wait until CloudFront has deployed that, delete it; ABSENT when there is none."""
    cloudfront = resolve(clients).cloudfront
    current = find_distribution(name, clients=clients)
    if current is None:
        return Ensured(Action.ABSENT, DISTRIBUTION, name)
    described = cloudfront.get_distribution_config(Id=current["Id"])
    if described["DistributionConfig"].get("Enabled"):
        cloudfront.update_distribution(Id=current["Id"], IfMatch=described["ETag"],
                                       DistributionConfig={**described["DistributionConfig"], "Enabled": False})
    deployed: Any = wait_for(lambda: cloudfront.get_distribution(Id=current["Id"]), DEPLOYED,
                             f"cloudfront distribution {name} ({current['Id']})", policy=policy)
    cloudfront.delete_distribution(Id=current["Id"], IfMatch=deployed["ETag"])
    return Ensured(Action.DELETED, DISTRIBUTION, name, current["ARN"])

