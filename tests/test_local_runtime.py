"""The local SageMaker runtime: real processes behind moto's SageMaker metadata, no Docker."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from mlops_core.aws import Clients
from mlops_core.errors import JobFailed
from mlops_core.local.runtime import pid_alive
from mlops_core.polling import ENDPOINT, PROCESSING_JOB, TRAINING_JOB, StatusSpec, WaitPolicy, wait_for
from tests.fakes import IMAGE_URI, ROLE_ARN

FAST = WaitPolicy(initial_delay=0.05, multiplier=1.5, min_delay=0.2, max_delay=0.5, timeout=60)
FAKE_CONTAINER = Path(__file__).with_name("fake_container.py")
BUCKET = "local-bucket"


@pytest.fixture
def local(local_env, local_aws):
    """Clients of the embedded AWS whose jobs and endpoints run the fake container."""
    local_aws.gateway.container = str(FAKE_CONTAINER)
    local_aws.gateway.container_env = {"MLOPS_LOCAL_PING_TIMEOUT": "20"}
    clients = Clients()
    clients.s3.create_bucket(Bucket=BUCKET)
    yield clients
    pids = local_aws.processes()
    for path in (local_aws.runtime.root / "endpoints").glob("*.json"):
        clients.sagemaker.delete_endpoint(EndpointName=path.stem)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if pid_alive(p)], "local runtime left processes running"


def processing_request(name: str, **environment: str) -> dict:
    return {
        "ProcessingJobName": name, "RoleArn": ROLE_ARN,
        "AppSpecification": {"ImageUri": IMAGE_URI, "ContainerArguments": ["preprocess"]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 10}},
        "ProcessingInputs": [{"InputName": "data", "S3Input": {
            "S3Uri": f"s3://{BUCKET}/abalone/data/current/", "LocalPath": "/opt/ml/processing/input/data",
            "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "training", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/abalone/e1/preprocess/training", "LocalPath": "/opt/ml/processing/output/training",
            "S3UploadMode": "EndOfJob"}}]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Environment": environment,
    }


def training_request(name: str, **hyperparameters: str) -> dict:
    return {
        "TrainingJobName": name, "RoleArn": ROLE_ARN, "HyperParameters": hyperparameters,
        "AlgorithmSpecification": {"TrainingImage": IMAGE_URI, "TrainingInputMode": "File"},
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/abalone/e1/preprocess/training/"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/abalone/e1/model"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def put_raw_data(clients: Clients) -> None:
    clients.s3.put_object(Bucket=BUCKET, Key="abalone/data/current/abalone.csv", Body=b"M,0.4,0.3,0.1,1,1,1,1,9\n")
    clients.s3.put_object(Bucket=BUCKET, Key="abalone/data/current/survey-1.csv", Body=b"F,0.5,0.4,0.1,1,1,1,1,11\n")


def test_processing_job_runs_the_container_and_uploads_outputs(local):
    put_raw_data(local)
    local.sagemaker.create_processing_job(**processing_request("abalone-Preprocess-e1"))
    first = local.sagemaker.describe_processing_job(ProcessingJobName="abalone-Preprocess-e1")
    assert first["ProcessingJobStatus"] == "InProgress"
    done = wait_for(lambda: local.sagemaker.describe_processing_job(ProcessingJobName="abalone-Preprocess-e1"),
                    PROCESSING_JOB, "abalone-Preprocess-e1", policy=FAST)
    assert done["ProcessingJobStatus"] == "Completed" and "ProcessingEndTime" in done
    keys = sorted(o["Key"] for o in local.s3.list_objects_v2(Bucket=BUCKET, Prefix="abalone/e1/")["Contents"])
    assert keys == ["abalone/e1/preprocess/training/abalone.csv", "abalone/e1/preprocess/training/survey-1.csv"]


def test_failed_job_reports_the_container_reason(local):
    put_raw_data(local)
    local.sagemaker.create_processing_job(**processing_request("abalone-Preprocess-bad", FAIL="preprocess"))
    with pytest.raises(JobFailed) as info:
        wait_for(lambda: local.sagemaker.describe_processing_job(ProcessingJobName="abalone-Preprocess-bad"),
                 PROCESSING_JOB, "abalone-Preprocess-bad", policy=FAST)
    assert "AlgorithmError: preprocess failed on purpose" in info.value.reason
    assert "container.log" in info.value.reason
    streams = local.logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs",
                                              logStreamNamePrefix="abalone-Preprocess-bad/")["logStreams"]
    [stream] = streams  # where the CloudWatch hint of the error says the logs are, as on AWS
    events = local.logs.get_log_events(logGroupName="/aws/sagemaker/ProcessingJobs",
                                       logStreamName=stream["logStreamName"])["events"]
    assert [e["message"] for e in events] == ["preprocess failed on purpose"]


def test_missing_input_fails_the_job_with_a_client_error(local):
    local.sagemaker.create_processing_job(**processing_request("abalone-Preprocess-empty"))
    with pytest.raises(JobFailed, match="no S3 objects found under s3://local-bucket/abalone/data/current/"):
        wait_for(lambda: local.sagemaker.describe_processing_job(ProcessingJobName="abalone-Preprocess-empty"),
                 PROCESSING_JOB, "abalone-Preprocess-empty", policy=FAST)


def test_training_job_uploads_model_tarball_and_writes_sagemaker_config(local, tmp_path):
    put_raw_data(local)
    local.s3.put_object(Bucket=BUCKET, Key="abalone/e1/preprocess/training/training.csv", Body=b"x\n")
    local.sagemaker.create_training_job(**training_request("abalone-Train-e1", epochs="3"))
    done = wait_for(lambda: local.sagemaker.describe_training_job(TrainingJobName="abalone-Train-e1"),
                    TRAINING_JOB, "abalone-Train-e1", policy=FAST)
    artifact = done["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/abalone/e1/model/abalone-Train-e1/output/model.tar.gz"
    assert done["SecondaryStatus"] == "Completed"
    archive = tmp_path / "model.tar.gz"
    local.s3.download_file(BUCKET, artifact.split(BUCKET + "/")[1], str(archive))
    with tarfile.open(archive) as tar:
        model = json.loads(tar.extractfile("model.txt").read())
    assert model == {"params": {"epochs": "3"}, "data": ["training.csv"]}


def test_job_state_survives_the_process_that_started_it_and_names_are_unique(local):
    local.s3.put_object(Bucket=BUCKET, Key="abalone/e1/preprocess/training/training.csv", Body=b"x\n")
    starter = textwrap.dedent("""
        from mlops_core.aws import Clients
        from tests.test_local_runtime import training_request
        Clients().sagemaker.create_training_job(**training_request("abalone-Train-slow", sleep="1.5"))
    """)
    subprocess.run([sys.executable, "-c", starter], check=True, timeout=60, cwd=Path(__file__).parents[1])
    description = local.sagemaker.describe_training_job(TrainingJobName="abalone-Train-slow")
    assert description["TrainingJobStatus"] == "InProgress"
    with pytest.raises(local.sagemaker.exceptions.ClientError, match="already exists"):
        local.sagemaker.create_training_job(**training_request("abalone-Train-slow"))
    done = wait_for(lambda: local.sagemaker.describe_training_job(TrainingJobName="abalone-Train-slow"),
                    TRAINING_JOB, "abalone-Train-slow", policy=FAST)
    assert done["TrainingJobStatus"] == "Completed"


def test_stopping_a_running_job(local):
    local.s3.put_object(Bucket=BUCKET, Key="abalone/e1/preprocess/training/training.csv", Body=b"x\n")
    local.sagemaker.create_training_job(**training_request("abalone-Train-stop", sleep="30"))
    training_started = StatusSpec("training job", lambda d: d["SecondaryStatus"], frozenset({"Training"}),
                                  frozenset({"Failed"}))
    wait_for(lambda: local.sagemaker.describe_training_job(TrainingJobName="abalone-Train-stop"),
             training_started, "abalone-Train-stop", policy=FAST)
    local.sagemaker.stop_training_job(TrainingJobName="abalone-Train-stop")
    done = wait_for(lambda: local.sagemaker.describe_training_job(TrainingJobName="abalone-Train-stop"),
                    TRAINING_JOB, "abalone-Train-stop", policy=FAST, accept_stopped=True)
    assert done["TrainingJobStatus"] == "Stopped"


def put_model(clients: Clients, name: str, broken: bool = False) -> None:
    model_data = upload_model_archive(clients, name, broken)
    clients.sagemaker.create_model(ModelName=name, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
        "Image": IMAGE_URI, "ModelDataUrl": model_data})
    clients.sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 100,
                           "DestinationS3Uri": f"s3://{BUCKET}/abalone/data-capture",
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                           "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}})


def wait_endpoint(clients: Clients, name: str) -> dict:
    return wait_for(lambda: clients.sagemaker.describe_endpoint(EndpointName=name), ENDPOINT, name, policy=FAST)


def test_endpoint_serves_captures_and_survives_a_broken_update(local):
    put_model(local, "abalone-v1")
    put_model(local, "abalone-v2-broken", broken=True)
    local.sagemaker.create_endpoint(EndpointName="abalone", EndpointConfigName="abalone-v1")
    assert local.sagemaker.describe_endpoint(EndpointName="abalone")["EndpointStatus"] == "Creating"
    assert wait_endpoint(local, "abalone")["EndpointConfigName"] == "abalone-v1"

    body = "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15\nF,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21\n"
    answer = local.sagemaker_runtime.invoke_endpoint(EndpointName="abalone", Body=body, ContentType="text/csv")
    assert answer["Body"].read().decode() == "9.5\n10.5"

    captures = local.s3.list_objects_v2(Bucket=BUCKET, Prefix="abalone/data-capture/abalone/AllTraffic/")["Contents"]
    assert len(captures) == 1 and captures[0]["Key"].endswith(".jsonl")
    record = json.loads(local.s3.get_object(Bucket=BUCKET, Key=captures[0]["Key"])["Body"].read())
    assert record["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                                      "data": body, "encoding": "CSV"}
    assert record["captureData"]["endpointOutput"]["data"] == "9.5\n10.5"
    assert record["eventVersion"] == "0" and record["eventMetadata"]["inferenceTime"].endswith("Z")

    with pytest.raises(local.sagemaker_runtime.exceptions.ClientError) as info:
        local.sagemaker_runtime.invoke_endpoint(EndpointName="abalone", Body="", ContentType="text/csv")
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert info.value.response["OriginalStatusCode"] == 400  # a modeled field of ModelError, as botocore parses it

    local.sagemaker.update_endpoint(EndpointName="abalone", EndpointConfigName="abalone-v2-broken")
    assert local.sagemaker.describe_endpoint(EndpointName="abalone")["EndpointStatus"] == "Updating"
    after = wait_endpoint(local, "abalone")
    assert after["EndpointConfigName"] == "abalone-v1"
    assert "did not pass the ping health check" in after["FailureReason"]
    again = local.sagemaker_runtime.invoke_endpoint(EndpointName="abalone", Body=body, ContentType="text/csv")
    assert again["Body"].read().decode() == "9.5\n10.5"


def test_endpoint_update_switches_only_when_the_new_server_answers(local, local_aws):
    runtime = local_aws.runtime
    put_model(local, "abalone-a")
    put_model(local, "abalone-b")
    local.sagemaker.create_endpoint(EndpointName="abalone-ab", EndpointConfigName="abalone-a")
    wait_endpoint(local, "abalone-ab")
    old_pid = runtime.read("endpoints", "abalone-ab")["server_pid"]
    local.sagemaker.update_endpoint(EndpointName="abalone-ab", EndpointConfigName="abalone-b")
    after = wait_endpoint(local, "abalone-ab")
    assert after["EndpointConfigName"] == "abalone-b" and "FailureReason" not in after
    deadline = time.monotonic() + 10
    while pid_alive(old_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(old_pid), "the superseded server must be stopped"


def test_creating_an_endpoint_on_a_broken_model_fails(local):
    put_model(local, "abalone-broken", broken=True)
    local.sagemaker.create_endpoint(EndpointName="abalone-b", EndpointConfigName="abalone-broken")
    with pytest.raises(Exception, match="did not pass the ping health check"):
        wait_endpoint(local, "abalone-b")


def upload_model_archive(clients: Clients, name: str, broken: bool = False) -> str:
    """A model.tar.gz the fake container serves (or, with ``broken``, refuses to serve); its S3 URI."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        member = tarfile.TarInfo("BROKEN" if broken else "weights.txt")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"w"))
    clients.s3.put_object(Bucket=BUCKET, Key=f"models/{name}.tar.gz", Body=archive.getvalue())
    return f"s3://{BUCKET}/models/{name}.tar.gz"


def test_library_deploy_of_a_broken_model_raises_rolled_back_and_the_old_model_keeps_serving(local):
    from mlops_core.errors import DeploymentRolledBack
    from mlops_core.sagemaker.endpoints import deploy_model

    good = upload_model_archive(local, "good")
    broken = upload_model_archive(local, "broken", broken=True)
    first = deploy_model("abalone-lib", IMAGE_URI, good, ROLE_ARN, clients=local, policy=FAST)
    with pytest.raises(DeploymentRolledBack) as info:
        deploy_model("abalone-lib", IMAGE_URI, broken, ROLE_ARN, clients=local, policy=FAST)
    assert info.value.running_config == first.config.name
    assert "ping health check" in str(info.value)
    answer = local.sagemaker_runtime.invoke_endpoint(EndpointName="abalone-lib", Body="M,1,1,1,1,1,1,1",
                                                     ContentType="text/csv")
    assert answer["Body"].read() == b"9.5"


def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses on which something listens on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_a_local_endpoint_listens_on_loopback_only(local, local_aws):
    put_model(local, "abalone-lo")
    local.sagemaker.create_endpoint(EndpointName="abalone-lo", EndpointConfigName="abalone-lo")
    wait_endpoint(local, "abalone-lo")
    port = local_aws.runtime.read("endpoints", "abalone-lo")["port"]
    assert listening_addresses(port) == {"127.0.0.1"}


def test_a_training_job_reports_the_containers_progress(local):
    local.s3.put_object(Bucket=BUCKET, Key="abalone/e1/preprocess/training/training.csv", Body=b"x\n")
    local.sagemaker.create_training_job(**training_request("abalone-Train-progress", sleep="6"))
    deadline = time.monotonic() + 30
    messages = set()
    while time.monotonic() < deadline:
        described = local.sagemaker.describe_training_job(TrainingJobName="abalone-Train-progress")
        messages |= {t.get("StatusMessage") for t in described.get("SecondaryStatusTransitions", [])}
        if described["TrainingJobStatus"] != "InProgress":
            break
        time.sleep(0.5)
    assert any(m and m.startswith("step ") for m in messages), messages

