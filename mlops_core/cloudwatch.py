"""CloudWatch metric alarms over plain specs: ``ensure_alarm`` (create, update or leave alone) and ``delete_alarm``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_core.aws import Clients, resolve
from mlops_core.ensure import Action, Ensured, contains, result, tag_list

KIND = "cloudwatch alarm"


@dataclass(frozen=True)
class MetricAlarm:
    """An alarm on one metric (``metric_name`` in ``namespace``) or on a metric-math ``expression`` over
    ``metrics`` (each ``(id, namespace, metric_name)``, the same ``dimensions``)."""

    name: str
    namespace: str
    threshold: float
    dimensions: Mapping[str, str]
    metric_name: str | None = None
    expression: str | None = None
    metrics: tuple[tuple[str, str, str], ...] = ()
    statistic: str = "Maximum"
    period_s: int = 3600
    comparison: str = "GreaterThanThreshold"
    evaluation_periods: int = 1
    missing_data: str = "notBreaching"
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def request(self) -> dict[str, Any]:
        """The PutMetricAlarm request (without tags)."""
        dimensions = [{"Name": k, "Value": v} for k, v in self.dimensions.items()]
        request: dict[str, Any] = {
            "AlarmName": self.name, "AlarmDescription": self.description, "ActionsEnabled": True,
            "Threshold": self.threshold, "ComparisonOperator": self.comparison,
            "EvaluationPeriods": self.evaluation_periods, "TreatMissingData": self.missing_data}
        if self.expression is None:
            return {**request, "Namespace": self.namespace, "MetricName": self.metric_name,
                    "Dimensions": dimensions, "Statistic": self.statistic, "Period": self.period_s}
        queries = [{"Id": metric_id, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
            "Period": self.period_s, "Stat": self.statistic}} for metric_id, namespace, metric in self.metrics]
        return {**request, "Metrics": [*queries, {"Id": "result", "Expression": self.expression,
                                                   "Label": self.name, "ReturnData": True}]}


def describe_alarm(name: str, *, clients: Clients | None = None) -> dict | None:
    """The alarm's description, or None."""
    found = resolve(clients).cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm"])
    return next(iter(found["MetricAlarms"]), None)


def ensure_alarm(alarm: MetricAlarm, *, dry_run: bool = False, clients: Clients | None = None) -> Ensured:
    """Create the alarm, or put it again when its definition differs (PutMetricAlarm replaces it whole)."""
    clients = resolve(clients)
    current = describe_alarm(alarm.name, clients=clients)
    wanted = alarm.request()
    changes = [] if current is None else sorted(k for k, v in wanted.items() if not contains(current.get(k), v))
    if current is not None and not changes:
        return result(KIND, alarm.name, arn=current.get("AlarmArn"), dry_run=dry_run)
    if not dry_run:
        clients.cloudwatch.put_metric_alarm(**wanted, **({"Tags": tag_list(alarm.tags)}
                                                         if current is None and alarm.tags else {}))
    arn = (current or describe_alarm(alarm.name, clients=clients) or {}).get("AlarmArn") if not dry_run else None
    return result(KIND, alarm.name, created=current is None, changes=changes, arn=arn, dry_run=dry_run)


def delete_alarm(name: str, *, clients: Clients | None = None) -> Ensured:
    """Delete the alarm; ABSENT when there is none (DeleteAlarms is silent about unknown names)."""
    clients = resolve(clients)
    if describe_alarm(name, clients=clients) is None:
        return Ensured(Action.ABSENT, KIND, name)
    clients.cloudwatch.delete_alarms(AlarmNames=[name])
    return Ensured(Action.DELETED, KIND, name)
