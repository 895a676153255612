#!/usr/bin/env python3
"""Delete everything bin/bootstrap.py created for a project: pipeline, build projects and their logs, the
state machine of the workflow build stage, CodeCommit repository, SSM parameters, ECR repository (with its
images), IAM roles and the bucket (every object version). Refuses without --yes; resources already gone
are skipped, so it can run twice.

    python bin/teardown.py --project abalone --yes
"""

from __future__ import annotations

import argparse

from mlops_core.aws import Clients, resolve
from mlops_core.cli import run
from mlops_core.errors import ConfigError
from mlops_core.project import add_project_arguments, describe_results, project_from_args, teardown


def main(argv: list[str] | None = None, *, clients: Clients | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_project_arguments(parser)
    parser.add_argument("--yes", action="store_true", help="really delete (the data in the bucket too)")
    args = parser.parse_args(argv)
    clients = resolve(clients)
    project = project_from_args(args, clients=clients)
    if not args.yes:
        raise ConfigError(f"teardown deletes every resource of project {project.name}, the data in "
                          f"s3://{project.bucket} included; pass --yes to confirm")
    print(f"teardown of project {project.name} (account {project.account_id}, {project.region}):")
    for line in describe_results(teardown(project, clients=clients)):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    run(main)
