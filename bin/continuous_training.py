#!/usr/bin/env python3
"""Continuous training: merge new survey files from s3://BUCKET/MODEL/data/incoming/ and start a release.

Bad rows are quarantined with their reason under data/quarantine/, good ones merged (no duplicates)
into a new dataset version that becomes data/current/; a file is never ingested twice (data/manifest.json).
With PIPELINE_NAME set, a release (pipeline execution) is started for the new version.
Run it by hand, from a CodeBuild project on an EventBridge schedule, or from Airflow
(examples/airflow_dag.py). Exit 0 ok, 1 failed, 2 configuration error.
"""

from __future__ import annotations

import argparse
import json

from mlops_core.aws import Clients
from mlops_core.cli import run
from mlops_core.config import add_config_arguments, config_from_args
from workflows.continuous_training import ingest

SETTINGS = ("model_name", "bucket_name", "pipeline_name", "aws_region")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, SETTINGS)
    parser.add_argument("--no-release", action="store_true", help="merge only, start no pipeline execution")
    args = parser.parse_args(argv)
    config = config_from_args(args, ("model_name", "bucket_name", "aws_region"))
    report = ingest(config.bucket_name, config.model_name,
                    pipeline_name=None if args.no_release else config.pipeline_name,
                    clients=Clients(region=config.aws_region))
    print(json.dumps(report.to_dict(), indent=1, default=str))
    return 0


if __name__ == "__main__":
    run(main)
