"""Package shape: light import, client factory, logging, CLI exit codes."""

import io
import json
import subprocess
import sys
import textwrap

import boto3
import pytest
import structlog

import mlops_core
from mlops_core.aws import DEFAULT_MAX_ATTEMPTS, Clients, resolve_region
from mlops_core.errors import ConfigError
from mlops_core.logs import configure_logging, get_logger, redact

HEAVY = ("tensorflow", "pandas", "numpy", "sklearn", "keras")


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_import_pulls_in_no_heavy_module():
    result = run_python(f"""
        import sys, mlops_core
        for name in mlops_core.__all__:
            getattr(mlops_core, name)
        import mlops_core.aws, mlops_core.polling, mlops_core.config, mlops_core.logs, mlops_core.cli
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_does_not_touch_logging_configuration():
    result = run_python("""
        import logging, structlog
        before = (list(logging.getLogger().handlers), structlog.is_configured())
        import mlops_core.polling, mlops_core.cli
        print(before == (list(logging.getLogger().handlers), structlog.is_configured()))
    """)
    assert result.stdout.strip() == "True", result.stderr


def test_lazy_exports_resolve():
    assert mlops_core.Clients is Clients
    with pytest.raises(AttributeError):
        mlops_core.no_such_thing  # noqa: B018


def test_region_missing_is_a_config_error(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ConfigError, match="AWS_REGION"):
        Clients().get("s3")
    assert resolve_region(region="eu-west-1") == "eu-west-1"


def test_clients_are_built_once_with_retries_and_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    clients = Clients()
    s3 = clients.s3
    assert clients.get("s3") is s3
    assert s3.meta.region_name == "eu-west-2"
    assert s3.meta.endpoint_url == "http://127.0.0.1:5999"
    assert s3.meta.config.retries == {"mode": "standard", "total_max_attempts": DEFAULT_MAX_ATTEMPTS + 1}
    assert clients.sagemaker_runtime.meta.service_model.service_name == "sagemaker-runtime"


def test_caller_supplied_session_and_clients_are_used(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    session = boto3.Session(region_name="ap-south-1", aws_access_key_id="x", aws_secret_access_key="y")
    mine = session.client("sagemaker")
    clients = Clients(session, sagemaker=mine)
    assert clients.sagemaker is mine
    assert clients.session is session and clients.s3.meta.region_name == "ap-south-1"


def test_redact_nested_secrets_by_exact_key_names():
    event = {"event": "x", "password": "p", "nested": {"SecretAccessKey": "s", "ok": 1},
             "items": [{"api_key": "k"}, {"Authorization": "AWS4 ..."}], "token_count": 3, "user": "u",
             "passed": True, "summary": "RMSE 2.0: PASS", "bypass": "b", "session-token": "t"}
    assert redact(event) == {"event": "x", "password": "***", "nested": {"SecretAccessKey": "***", "ok": 1},
                             "items": [{"api_key": "***"}, {"Authorization": "***"}], "token_count": 3, "user": "u",
                             "passed": True, "summary": "RMSE 2.0: PASS", "bypass": "b", "session-token": "***"}


def test_json_logs_when_not_a_terminal_and_level_from_env(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    stream = io.StringIO()
    try:
        configure_logging(stream=stream)
        log = get_logger("test")
        log.info("hidden")
        log.warning("shown", token="abc", job="j")
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in lines] == ["shown"]
    assert lines[0]["token"] == "***" and lines[0]["job"] == "j" and lines[0]["level"] == "warning"


def test_console_logs_on_a_terminal(monkeypatch):
    monkeypatch.delenv("CODEBUILD_BUILD_ID", raising=False)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    try:
        configure_logging(stream=stream, level="INFO")
        get_logger("test").info("hello", job="j")
    finally:
        structlog.reset_defaults()
    text = stream.getvalue()
    assert "hello" in text and not text.lstrip().startswith("{")


def test_codebuild_forces_json(monkeypatch):
    from mlops_core.logs import wants_json

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("CODEBUILD_BUILD_ID", raising=False)
    assert not wants_json(Tty())
    monkeypatch.setenv("CODEBUILD_BUILD_ID", "abalone:1")
    assert wants_json(Tty())


@pytest.mark.parametrize("body, code, needle", [
    ("raise ConfigError(['MODEL_NAME is not set: expected x'])", 2, "configuration error: MODEL_NAME is not set"),
    ("raise JobFailed('abalone-Train-1', 'Failed', 'OOM', 'logs here')", 1, "abalone-Train-1 ended Failed"),
    ("return 0", 0, ""),
])
def test_cli_exit_codes(body, code, needle):
    result = run_python(f"""
        from mlops_core.cli import run
        from mlops_core.errors import ConfigError, JobFailed
        def main():
            {body}
        run(main)
    """)
    assert result.returncode == code, result.stderr
    assert needle in result.stderr


