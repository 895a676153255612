"""examples/airflow_dag.py: harmless without Airflow, a working DAG with it (Airflow stubbed here)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

DAG_FILE = Path(__file__).resolve().parents[1] / "examples" / "airflow_dag.py"


def load_dag_module():
    spec = importlib.util.spec_from_file_location("airflow_dag_example", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_importable_without_airflow():
    assert "airflow" not in sys.modules
    module = load_dag_module()
    assert module.DAG is None and not hasattr(module, "dag")


class FakeDag:
    def __init__(self, **kwargs):
        self.kwargs, self.tasks = kwargs, []

    def __enter__(self):
        FakeDag.current = self
        return self

    def __exit__(self, *_exc):
        FakeDag.current = None


class FakeOperator:
    def __init__(self, *, task_id, python_callable):
        self.task_id, self.python_callable = task_id, python_callable
        FakeDag.current.tasks.append(self)


def test_dag_runs_the_continuous_training_flow(monkeypatch, aws):
    airflow = types.ModuleType("airflow")
    airflow.DAG = FakeDag
    operators = types.ModuleType("airflow.operators.python")
    operators.PythonOperator = FakeOperator
    monkeypatch.setitem(sys.modules, "airflow", airflow)
    monkeypatch.setitem(sys.modules, "airflow.operators", types.ModuleType("airflow.operators"))
    monkeypatch.setitem(sys.modules, "airflow.operators.python", operators)
    module = load_dag_module()
    assert module.dag.kwargs["dag_id"] == "abalone_continuous_training"
    assert module.dag.kwargs["max_active_runs"] == 1
    [task] = module.dag.tasks

    aws.s3.create_bucket(Bucket="abalone-bucket")
    aws.s3.put_object(Bucket="abalone-bucket", Key="abalone/data/incoming/s.csv",
                      Body=b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\n")
    monkeypatch.setenv("MODEL_NAME", "abalone")
    monkeypatch.setenv("BUCKET_NAME", "abalone-bucket")
    report = task.python_callable()
    assert report["dataset_version"] == 1 and report["files"][0]["added"] == 1 and report["release"] is None
