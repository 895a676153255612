"""Shared fixtures: AWS through moto (in-process, or its server on 127.0.0.1), never the real thing."""

from __future__ import annotations

import boto3
import pytest

from mlops_core.aws import Clients

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def no_real_aws(monkeypatch, tmp_path_factory):
    """Dummy credentials and region for every test; nothing can reach a real account."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "CODEBUILD_BUILD_ID", "EXECUTION_ID", "MLOPS_LOCAL_CONTAINER"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path_factory.getbasetemp() / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path_factory.getbasetemp() / "no-aws-credentials"))


@pytest.fixture
def aws(aws_clients):
    """moto in-process through the test kit (mlops_core.testing): a fresh account per test."""
    return aws_clients


@pytest.fixture
def stubbed():
    """A Stubber-wrapped SageMaker client inside Clients: (clients, stubber); all responses must be used."""
    from botocore.stub import Stubber

    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield Clients(region="eu-west-1", sagemaker=client), stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def recorder(mutating_calls):
    """The API calls of the ``aws`` fixture's clients (the test kit's call log)."""
    return mutating_calls


class MotoServer:
    """moto's own server on 127.0.0.1 (jobs complete at once, nothing runs): for tests of scripts that only
    need AWS's control plane."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": REGION,
                    "AWS_DEFAULT_REGION": REGION}

    def reset(self) -> None:
        import urllib.request

        with urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")):
            pass

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture(scope="session")
def moto_server():
    """moto's server on 127.0.0.1 for subprocess tests; shared by the session, reset per test by ``server_env``."""
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def server_env(moto_server, monkeypatch):
    """A reset moto server and os.environ pointing at it; returns the variables for subprocesses."""
    moto_server.reset()
    for key, value in moto_server.env.items():
        monkeypatch.setenv(key, value)
    return moto_server.env


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory):
    """The embedded AWS on 127.0.0.1 (moto, with the local SageMaker runtime behind the same gateway);
    shared by the session, reset per test by ``local_env``."""
    from mlops_core.local.embedded import EmbeddedAws

    with EmbeddedAws(region=REGION, state_dir=tmp_path_factory.mktemp("local-aws")) as server:
        yield server


@pytest.fixture
def local_env(local_aws, monkeypatch):
    """A reset embedded AWS (no resource, no job process, the default container and engine) and os.environ pointing at
    it; returns the variables for subprocesses."""
    local_aws.reset()
    local_aws.gateway.container, local_aws.gateway.container_env, local_aws.gateway.engine = None, {}, "process"
    for key, value in local_aws.env.items():
        monkeypatch.setenv(key, value)
    return local_aws.env


def processes_under(folder) -> list[str]:
    """Command lines of live processes started in, or pointed at, ``folder`` (Linux /proc)."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = str((proc / "cwd").resolve())
            state = (proc / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if state != "Z" and (str(folder) in cmdline or cwd.startswith(str(folder))):
            found.append(f"{proc.name}: {cmdline}")
    return found


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind(tmp_path_factory):
    """After the whole session, no job, endpoint or runner process started by a test may still run."""
    base = tmp_path_factory.getbasetemp()
    yield
    import time

    deadline = time.monotonic() + 15
    while processes_under(base) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = processes_under(base)
    assert not left, f"processes left running after the tests: {left}"
