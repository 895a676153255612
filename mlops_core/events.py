"""EventBridge rules with their targets over plain specs: ``ensure_rule`` and ``delete_rule``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_core.aws import Clients, resolve
from mlops_core.ensure import Action, Ensured, describe_or_none, normalize_document, result, tag_list

KIND = "eventbridge rule"


@dataclass(frozen=True)
class Target:
    """What the rule starts: ``arn`` (e.g. a CodePipeline pipeline), invoked with ``role_arn``."""

    id: str
    arn: str
    role_arn: str | None = None

    def request(self) -> dict[str, str]:
        return {"Id": self.id, "Arn": self.arn, **({"RoleArn": self.role_arn} if self.role_arn else {})}


@dataclass(frozen=True)
class Rule:
    """A rule on the default event bus matching ``pattern``, sending matching events to ``targets``."""

    name: str
    pattern: Mapping[str, Any]
    targets: tuple[Target, ...]
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


def ensure_rule(rule: Rule, *, dry_run: bool = False, clients: Clients | None = None) -> Ensured:
    """Create the rule (enabled) and its targets, or update what differs; a re-run makes no mutating call."""
    events = resolve(clients).events
    current = describe_or_none(events.describe_rule, Name=rule.name)
    changes: list[str] = []
    if current is not None:
        if normalize_document(current.get("EventPattern") or "{}") != normalize_document(dict(rule.pattern)):
            changes.append("pattern")
        if current.get("State") != "ENABLED" or current.get("Description", "") != rule.description:
            changes.append("state")
    targets = [] if current is None else events.list_targets_by_rule(Rule=rule.name)["Targets"]
    wanted = [t.request() for t in rule.targets]
    stale = [t["Id"] for t in targets if t["Id"] not in {w["Id"] for w in wanted}]
    if current is not None and sorted(map(_target_key, targets)) != sorted(map(_target_key, wanted)):
        changes.append("targets")
    if current is not None and not changes:
        return result(KIND, rule.name, arn=current.get("Arn"), dry_run=dry_run)
    arn = current.get("Arn") if current else None
    if not dry_run:
        if current is None or {"pattern", "state"} & set(changes):
            arn = events.put_rule(Name=rule.name, EventPattern=json.dumps(dict(rule.pattern)), State="ENABLED",
                                  Description=rule.description,
                                  **({"Tags": tag_list(rule.tags)} if current is None and rule.tags else {}))["RuleArn"]
        if stale:
            events.remove_targets(Rule=rule.name, Ids=stale)
        if current is None or "targets" in changes:
            events.put_targets(Rule=rule.name, Targets=wanted)
    return result(KIND, rule.name, created=current is None, changes=changes, arn=arn, dry_run=dry_run)


def _target_key(target: Mapping[str, str]) -> tuple[str, str, str]:
    return target["Id"], target["Arn"], target.get("RoleArn", "")


def delete_rule(name: str, *, clients: Clients | None = None) -> Ensured:
    """Remove the rule's targets, then the rule; ABSENT when there is no such rule."""
    events = resolve(clients).events
    if describe_or_none(events.describe_rule, Name=name) is None:
        return Ensured(Action.ABSENT, KIND, name)
    targets = events.list_targets_by_rule(Rule=name)["Targets"]
    if targets:
        events.remove_targets(Rule=name, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name=name)
    return Ensured(Action.DELETED, KIND, name)
