"""The real images in the loop: model_container/Dockerfile built by the container engine (Podman, on the Debian
base bin/container-engine makes), every job and the endpoint run in them by the embedded AWS.

Outside CI without an engine these tests are skipped, saying why; in CI (CI=true, where bin/test installs the
engine first) a missing engine fails them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mlops_core.local.images import LOCAL_BASE, default_base
from mlops_core.local.runtime import container_engine
from mlops_core.polling import PROCESSING_JOB, WaitPolicy, wait_for
from tests.fakes import ROLE_ARN

ENGINE_READY = container_engine() is not None and default_base() is not None
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not ENGINE_READY and os.environ.get("CI") != "true",
    reason=f"no container engine or no {LOCAL_BASE} image: run bin/container-engine (CI does)")]


@pytest.fixture(scope="module")
def container_release(tmp_path_factory):
    """The whole local release on the real data, every job and the endpoint in the built images."""
    from workflows.local_release import parser, run_release

    out = tmp_path_factory.mktemp("container-release")
    lines: list[str] = []
    started = time.monotonic()
    summary = run_release(parser().parse_args(["--engine", "container", "--out", str(out), "--samples", "3"]),
                          echo=lines.append)
    return summary, lines, time.monotonic() - started


def test_the_whole_release_runs_in_the_images_and_passes_the_default_gate(container_release):
    summary, lines, _seconds = container_release
    assert summary["ok"], "\n".join(lines[-40:])
    assert [s["stage"] for s in summary["stages"]] == ["ContainerBuild", "Preprocess", "Train", "Evaluate", "Deploy"]
    [first] = summary["releases"]
    assert first["rows"]["rows"] == 4177 and first["gate"].endswith("PASS") and "linear baseline" in first["gate"]
    assert summary["data_capture"] == {"requests_sent": 3, "records": 3}
    assert all(abs(p["prediction"]["predictions"][0]["rings"] - p["actual_rings"]) < 8 for p in summary["predictions"])
    built = [line for line in lines if line.startswith("stage ContainerBuild:")]
    assert any(":" + first["execution_id"] + " " in line for line in built)
    assert any(first["execution_id"] + "-serve" in line for line in built)


def test_a_failure_in_the_container_reaches_the_jobs_failure_reason(local_env, local_aws, tmp_path):
    from mlops_core.aws import Clients
    from mlops_core.local.images import build_image
    from mlops_core.project.release import Release

    image = "localhost/abalone-test:failure"
    build_image(Path(__file__).resolve().parents[1] / "model_container", image, target="train", base=default_base())
    local_aws.gateway.engine = "container"
    clients = Clients()
    clients.s3.create_bucket(Bucket="image-bucket")
    clients.s3.put_object(Bucket="image-bucket", Key="abalone/data/current/bad.csv", Body=b"X,not,a,row\n")
    spec = Release("image-bucket", "abalone", "bad").preprocess_spec(image, ROLE_ARN)
    clients.sagemaker.create_processing_job(**spec.request())
    with pytest.raises(Exception) as failed:
        wait_for(lambda: clients.sagemaker.describe_processing_job(ProcessingJobName=spec.name), PROCESSING_JOB,
                 spec.name, policy=WaitPolicy(initial_delay=0.2, max_delay=1, timeout=180))
    described = clients.sagemaker.describe_processing_job(ProcessingJobName=spec.name)
    assert described["ProcessingJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith("AlgorithmError: preprocess failed: ValueError: only 0 valid distinct rows"), reason
    assert "under /opt/ml/processing/input/data" in reason  # the path inside the image, not a host folder
    assert spec.name in str(failed.value)
