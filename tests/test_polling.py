import random

import boto3
import pytest
from botocore.stub import Stubber
from structlog.testing import capture_logs

from mlops_core.errors import JobFailed, ResourceFailed, UnknownStatus, WaitTimeout
from mlops_core.polling import (
    CODEBUILD_BUILD,
    DEFAULT_POLICY,
    ENDPOINT,
    PIPELINE_EXECUTION,
    SFN_EXECUTION,
    TRAINING_JOB,
    WaitPolicy,
    wait_for,
)
from mlops_core.testing import VirtualClock
from tests.fakes import NOW, client_error, training_job

JOB = "abalone-Train-e1"


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def wait_training(client, clock, **kwargs):
    return wait_for(lambda: client.describe_training_job(TrainingJobName=JOB), TRAINING_JOB, JOB,
                    clock=clock, rng=random.Random(0), **kwargs)


def test_in_progress_then_completed(sagemaker):
    client, stubber = sagemaker
    for status, secondary in [("InProgress", "Starting"), ("InProgress", "Training"), ("Completed", "Completed")]:
        stubber.add_response("describe_training_job", training_job(JOB, status, secondary), {"TrainingJobName": JOB})
    clock = VirtualClock()
    with capture_logs() as logs:
        result = wait_training(client, clock)
    assert result["TrainingJobStatus"] == "Completed"
    assert len(clock.sleeps) == 2
    changes = [e for e in logs if e["event"] == "status_changed"]
    assert [(e["status"], e["secondary_status"]) for e in changes] == [
        ("InProgress", "Starting"), ("InProgress", "Training"), ("Completed", "Completed")]
    assert all("elapsed_s" in e and e["resource"] == JOB for e in changes)


def test_one_log_event_per_status_change_not_per_poll(sagemaker):
    client, stubber = sagemaker
    for _ in range(5):
        stubber.add_response("describe_training_job", training_job(JOB, "InProgress"), {"TrainingJobName": JOB})
    stubber.add_response("describe_training_job", training_job(JOB, "Completed", "Completed"), {"TrainingJobName": JOB})
    with capture_logs() as logs:
        wait_training(client, VirtualClock())
    assert len([e for e in logs if e["event"] == "status_changed"]) == 2


def test_failed_raises_with_reason_and_logs(sagemaker):
    client, stubber = sagemaker
    stubber.add_response("describe_training_job", training_job(JOB, "InProgress"), {"TrainingJobName": JOB})
    stubber.add_response("describe_training_job",
                         training_job(JOB, "Failed", "Failed", reason="AlgorithmError: loss is NaN"),
                         {"TrainingJobName": JOB})
    with pytest.raises(JobFailed) as info:
        wait_training(client, VirtualClock())
    error = info.value
    assert error.status == "Failed" and error.resource == JOB
    assert "AlgorithmError: loss is NaN" in str(error)
    assert "/aws/sagemaker/TrainingJobs" in str(error) and f"{JOB}/" in error.logs


def test_stopped_raises_by_default_and_is_accepted_on_request(sagemaker):
    client, stubber = sagemaker
    stubber.add_response("describe_training_job", training_job(JOB, "Stopped", "Stopped"), {"TrainingJobName": JOB})
    with pytest.raises(JobFailed, match="ended Stopped"):
        wait_training(client, VirtualClock())
    stubber.add_response("describe_training_job", training_job(JOB, "Stopped", "Stopped"), {"TrainingJobName": JOB})
    assert wait_training(client, VirtualClock(), accept_stopped=True)["TrainingJobStatus"] == "Stopped"


def test_throttling_during_wait_is_survived(sagemaker):
    client, stubber = sagemaker
    stubber.add_response("describe_training_job", training_job(JOB, "InProgress"), {"TrainingJobName": JOB})
    stubber.add_client_error("describe_training_job", "ThrottlingException", "Rate exceeded", 400)
    stubber.add_client_error("describe_training_job", "InternalFailure", "oops", 500)
    stubber.add_response("describe_training_job", training_job(JOB, "Completed", "Completed"), {"TrainingJobName": JOB})
    with capture_logs() as logs:
        assert wait_training(client, VirtualClock())["TrainingJobStatus"] == "Completed"
    assert len([e for e in logs if e["event"] == "describe_retry"]) == 2


def test_non_transient_error_is_not_retried(sagemaker):
    client, stubber = sagemaker
    stubber.add_client_error("describe_training_job", "ValidationException", "Requested resource not found", 400)
    with pytest.raises(Exception, match="Requested resource not found"):
        wait_training(client, VirtualClock())


def test_throttling_that_never_ends_is_polled_through_until_the_deadline_never_past_it():
    calls = []

    def describe():
        calls.append(1)
        raise client_error("ThrottlingException", "Rate exceeded")

    clock = VirtualClock()
    with pytest.raises(WaitTimeout, match="last describe failed: .*Rate exceeded") as info:
        wait_for(describe, TRAINING_JOB, JOB, clock=clock, policy=WaitPolicy(timeout=300))
    assert clock.now - 1000 == pytest.approx(300), "the deadline is kept, not overshot"
    assert info.value.waited == pytest.approx(300)
    assert 20 <= len(calls) <= 60  # one describe per poll, on the engine's own backoff


def test_a_status_nobody_knows_is_warned_about_once_and_fails_after_a_bounded_time():
    clock = VirtualClock()
    with capture_logs() as logs, pytest.raises(UnknownStatus, match="'Paused'.*InProgress") as info:
        wait_for(lambda: {"TrainingJobStatus": "Paused"}, TRAINING_JOB, JOB, clock=clock)
    assert [e["status"] for e in logs if e["event"] == "unknown_status"] == ["Paused"]
    assert DEFAULT_POLICY.unknown_status_timeout <= clock.now - 1000 <= DEFAULT_POLICY.unknown_status_timeout + 61
    assert info.value.status == "Paused"
    with pytest.raises(UnknownStatus, match="None"):
        wait_for(lambda: {}, TRAINING_JOB, JOB, clock=VirtualClock())


def test_deadline_raises_timeout_naming_the_resource():
    clock = VirtualClock()
    with pytest.raises(WaitTimeout) as info:
        wait_for(lambda: {"TrainingJobStatus": "InProgress"}, TRAINING_JOB, JOB, clock=clock,
                 policy=WaitPolicy(timeout=120))
    assert JOB in str(info.value) and "InProgress" in str(info.value)
    assert 120 <= clock.now - 1000 <= 120 + 1e-6


def simulate(job_seconds: float, policy: WaitPolicy = DEFAULT_POLICY, seed: int = 0) -> tuple[float, int]:
    """Wait on a fake job that completes ``job_seconds`` after the wait starts; (lag, describe calls)."""
    clock = VirtualClock()
    start = clock.now
    calls = []

    def describe():
        calls.append(clock.now)
        done = clock.now - start >= job_seconds
        return {"TrainingJobStatus": "Completed" if done else "InProgress"}

    wait_for(describe, TRAINING_JOB, JOB, clock=clock, policy=policy, rng=random.Random(seed))
    return clock.now - start - job_seconds, len(calls)


@pytest.mark.parametrize("job_seconds", [0.5, 3, 7.5, 19, 50, 123, 599, 601, 1800, 3600, 4 * 3600])
def test_default_policy_notices_the_end_quickly(job_seconds):
    for seed in range(5):
        lag, _calls = simulate(job_seconds, seed=seed)
        assert lag <= max(2.0, 0.1 * job_seconds) + 1e-9
        assert lag <= DEFAULT_POLICY.max_delay


def test_default_policy_describe_budget():
    assert max(simulate(50, seed=s)[1] for s in range(20)) <= 30
    assert max(simulate(3600, seed=s)[1] for s in range(20)) <= 160


def test_policy_delays_grow_from_about_one_second_to_the_cap():
    policy = WaitPolicy(jitter=0)
    assert policy.delay(0, 0, 0.5) == pytest.approx(1.0)
    assert policy.delay(1, 1, 0.5) == pytest.approx(1.5)
    assert policy.delay(20, 10_000, 0.5) == policy.max_delay
    jittered = [WaitPolicy().delay(20, 10_000, r) for r in (0, 0.5, 0.999)]
    assert jittered[0] > jittered[1] > jittered[2] >= 0.8 * policy.max_delay


@pytest.mark.parametrize("spec, running, done, failed, reason", [
    (ENDPOINT, {"EndpointStatus": "Creating"}, {"EndpointStatus": "InService"},
     {"EndpointStatus": "Failed", "FailureReason": "image not found"}, "image not found"),
    (CODEBUILD_BUILD, {"builds": [{"buildStatus": "IN_PROGRESS", "currentPhase": "BUILD"}]},
     {"builds": [{"buildStatus": "SUCCEEDED"}]},
     {"builds": [{"buildStatus": "FAILED", "phases": [
         {"phaseType": "BUILD", "phaseStatus": "FAILED", "contexts": [{"message": "exit status 1"}]}],
         "logs": {"deepLink": "https://console/logs"}}]}, "BUILD: exit status 1"),
    (PIPELINE_EXECUTION, {"pipelineExecution": {"status": "InProgress"}},
     {"pipelineExecution": {"status": "Succeeded"}},
     {"pipelineExecution": {"status": "Failed", "statusSummary": "Deploy failed"}}, "Deploy failed"),
    (SFN_EXECUTION, {"status": "RUNNING"}, {"status": "SUCCEEDED"},
     {"status": "FAILED", "error": "States.TaskFailed", "cause": "Train failed"}, "States.TaskFailed: Train failed"),
])
def test_every_service_spec(spec, running, done, failed, reason):
    answers = iter([running, done])
    assert wait_for(lambda: next(answers), spec, "r", clock=VirtualClock()) == done
    answers = iter([running, failed])
    with pytest.raises(ResourceFailed) as info:
        wait_for(lambda: next(answers), spec, "r", clock=VirtualClock())
    assert info.value.reason == reason


def test_codebuild_failure_points_at_the_logs():
    failed = {"builds": [{"buildStatus": "FAILED", "logs": {"deepLink": "https://console/logs"}}]}
    with pytest.raises(JobFailed, match="https://console/logs"):
        wait_for(lambda: failed, CODEBUILD_BUILD, "abalone-Train:1", clock=VirtualClock())


@pytest.mark.timeout(60)
def test_one_retry_layer_each_poll_under_throttling_is_one_request():
    """A real botocore client against a loopback server that always throttles: the engine's polls are the
    only retries (botocore's own would add up to 10 requests and real backoff per poll)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mlops_core.aws import Clients
    from mlops_core.sagemaker.jobs import TRAINING, wait_job

    requests = []

    class Throttling(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(self.headers["X-Amz-Target"])
            body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
            self.send_response(400)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        clients = Clients(region="eu-west-1", endpoint_url=f"http://127.0.0.1:{server.server_port}")
        with capture_logs() as logs, pytest.raises(WaitTimeout, match="Rate exceeded"):
            wait_job(TRAINING, JOB, clients=clients, policy=WaitPolicy(timeout=120), clock=VirtualClock())
    finally:
        server.shutdown()
    polls = [e for e in logs if e["event"] == "describe_retry"]
    assert len(requests) == len(polls) > 10
    assert set(requests) == {"SageMaker.DescribeTrainingJob"}


def test_a_long_step_reports_progress_at_a_bounded_rate():
    clock = VirtualClock()
    start = clock.now

    def describe():
        elapsed = clock.now - start
        description = training_job(JOB, "Completed" if elapsed >= 300 else "InProgress")
        description["SecondaryStatusTransitions"] = [{"Status": "Training", "StartTime": NOW,
                                                      "StatusMessage": f"epoch {int(elapsed // 10)}"}]
        return description

    with capture_logs() as logs:
        wait_for(describe, TRAINING_JOB, JOB, clock=clock, rng=random.Random(0))
    progress = [e for e in logs if e["event"] == "progress"]
    assert 5 <= len(progress) <= 10  # about one per progress_every (30 s) of a 300 s step, never one per poll
    assert all(e["message"].startswith("epoch ") and "elapsed_s" in e for e in progress)
    times = [e["elapsed_s"] for e in progress]
    assert all(b - a >= DEFAULT_POLICY.progress_every - 0.1 for a, b in zip(times, times[1:], strict=False))

