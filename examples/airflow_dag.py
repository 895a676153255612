"""Airflow DAG: continuous training of the abalone model, once a day.

Copy this file into your DAGs folder on a worker that has this repository installed (``pip install .``
from its root: the ``mlops-core-aws`` distribution with its ``workflows`` package) and AWS credentials,
and set MODEL_NAME, BUCKET_NAME, PIPELINE_NAME and AWS_REGION in the worker's environment. The task merges the new survey files of ``s3://BUCKET/MODEL/data/incoming/`` into
a new dataset version and starts a release of the pipeline; reviewers approve it in CodePipeline as
usual. Runs never overlap (``max_active_runs=1``, and the flow holds an S3 lock), and a retried task
neither ingests a file twice nor starts a second release for the same dataset version.

Without Airflow installed this module defines nothing, so importing it is harmless.
"""

from __future__ import annotations

import datetime as dt

try:
    from airflow import DAG

    try:
        from airflow.providers.standard.operators.python import PythonOperator  # Airflow 3
    except ImportError:
        from airflow.operators.python import PythonOperator  # Airflow 2
except ImportError:  # Airflow is not installed
    DAG = None


def ingest_and_release() -> dict:
    """The task: returns the ingest report (files, dataset version, release id), kept as the task's XCom."""
    from workflows.continuous_training import run_from_environment

    return run_from_environment()


if DAG is not None:
    with DAG(
        dag_id="abalone_continuous_training",
        schedule="@daily",
        start_date=dt.datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
        tags=["mlops", "abalone"],
    ) as dag:
        PythonOperator(task_id="ingest_and_release", python_callable=ingest_and_release)
