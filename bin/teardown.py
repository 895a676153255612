#!/usr/bin/env python3
"""Delete everything bin/bootstrap.py created for a project: pipeline, build projects and their logs, the
state machine of the workflow build stage, CodeCommit repository, SSM parameters, ECR repository (with its
images), IAM roles and the bucket. Refuses without --yes (before any AWS call) and refuses a bucket the
project did not create (no tag project=NAME); a bucket holding data is kept unless --delete-data (then
every object version goes). Resources already gone are skipped, so it can run twice.

    python bin/teardown.py --project abalone --yes [--delete-data]
"""

from __future__ import annotations

import argparse

from mlops_core.aws import Clients
from mlops_core.cli import run
from mlops_core.errors import ConfigError
from mlops_core.project import add_project_arguments, describe_results, project_from_args, teardown
from mlops_core.project.bootstrap import project_config


def main(argv: list[str] | None = None, *, clients: Clients | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_project_arguments(parser, bootstrap=False)
    parser.add_argument("--yes", action="store_true", help="confirm: delete the project's resources")
    parser.add_argument("--delete-data", action="store_true",
                        help="also delete the data in the project's bucket (every object version) and the bucket")
    args = parser.parse_args(argv)
    config = project_config(args)
    if not args.yes:
        data = ", the data in its bucket included" if args.delete_data else ""
        raise ConfigError(f"teardown deletes every resource of project {config.project_name}{data}; "
                          "pass --yes to confirm")
    clients = clients if clients is not None else Clients(region=config.aws_region)
    project = project_from_args(args, config=config, clients=clients)
    print(f"teardown of project {project.name} (account {project.account_id}, {project.region}):")
    for line in describe_results(teardown(project, delete_data=args.delete_data, clients=clients)):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    run(main)
