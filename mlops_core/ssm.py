"""SSM parameters that hand values between components (``/{project}/{key}``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mlops_core.aws import Clients, resolve
from mlops_core.ensure import Ensured, delete_tolerant, describe_or_none, result

KIND = "ssm parameter"


def get_parameter(name: str, *, clients: Clients | None = None) -> str | None:
    """The parameter's value, or None when it does not exist."""
    found = describe_or_none(resolve(clients).ssm.get_parameter, Name=name)
    return found["Parameter"]["Value"] if found else None


def get_parameters(names: Iterable[str], *, clients: Clients | None = None) -> dict[str, str]:
    """name -> value for every named parameter that exists (GetParameters takes 10 names per call)."""
    names = list(names)
    found: dict[str, str] = {}
    for start in range(0, len(names), 10):
        answer = resolve(clients).ssm.get_parameters(Names=names[start:start + 10])
        found.update({p["Name"]: p["Value"] for p in answer["Parameters"]})
    return found


def ensure_parameter(name: str, value: str, *, description: str = "", tags: Mapping[str, str] | None = None,
                     dry_run: bool = False, clients: Clients | None = None) -> Ensured:
    """Create the String parameter or overwrite it when its value differs."""
    ssm = resolve(clients).ssm
    current = get_parameter(name, clients=clients)
    if current == value:
        return result(KIND, name, dry_run=dry_run)
    if not dry_run:
        if current is None:
            ssm.put_parameter(Name=name, Value=value, Type="String",
                              **({"Description": description} if description else {}),
                              Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
        else:
            ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    return result(KIND, name, created=current is None, changes=None if current is None else ["value"],
                  dry_run=dry_run)


def delete_parameter(name: str, *, clients: Clients | None = None) -> Ensured:
    """Delete the parameter; ABSENT when it is already gone."""
    return delete_tolerant(KIND, name, resolve(clients).ssm.delete_parameter, Name=name)
