#!/usr/bin/env python3
"""Create or update a project's CI/CD resources: bucket, ECR repository, IAM roles, SSM parameters,
CodeCommit repository, CodeBuild projects and the release pipeline (with ``--build-stage workflow`` also
the Step Functions ML workflow, which one Build action runs instead of Preprocess / Train / Evaluate; with
``--webapp`` also the Age Calculator: its page on CloudFront and its API Gateway API in front of the endpoint).
Safe to re-run: what is already right is left alone. ``--dry-run`` prints the plan without changing anything.

    python bin/bootstrap.py --project abalone [--build-stage workflow] [--webapp] [--dry-run]
"""

from __future__ import annotations

import argparse

from mlops_core.aws import Clients
from mlops_core.cli import run
from mlops_core.project import add_project_arguments, bootstrap, describe_results, project_from_args
from mlops_core.project.bootstrap import project_config
from workflows.ml_workflow import definition


def main(argv: list[str] | None = None, *, clients: Clients | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_project_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the plan; make no change")
    args = parser.parse_args(argv)
    config = project_config(args)
    clients = clients if clients is not None else Clients(region=config.aws_region)
    project = project_from_args(args, config=config, clients=clients)
    workflow = definition(project.role_arn("sagemaker")) if project.build_stage == "workflow" else None
    results = bootstrap(project, workflow_definition=workflow, dry_run=args.dry_run, clients=clients)
    print(f"{'plan' if args.dry_run else 'done'} for project {project.name} "
          f"(account {project.account_id}, {project.region}):")
    for line in describe_results(results):
        print(f"  {line}")
    print(f"clone URL: {project.clone_url}  (push pipeline code to {project.code_branch}, "
          f"model code to {project.model_branch})")
    print(f"pipeline:  {project.pipeline}")
    print(f"bucket:    s3://{project.bucket}")
    print(f"images:    {project.image_repository_uri}:{{EXECUTION_ID}} (training) and "
          f":{{EXECUTION_ID}}-serve (inference), pushed by the ContainerBuild action")
    for ensured in results:
        if ensured.kind == "cloudfront distribution" and ensured.details.get("domain"):
            print(f"page:      https://{ensured.details['domain']}/ (the Age Calculator)")
        if ensured.kind == "api gateway rest api" and ensured.details.get("url"):
            print(f"API:       POST {ensured.details['url']}/predict (python bin/system_test.py --api-url "
                  f"{ensured.details['url']})")
    return 0


if __name__ == "__main__":
    run(main)
