"""A new user's first hour: missing credentials, settings errors all at once, --help that says only what applies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RELEASE = {"MODEL_NAME": "abalone", "BUCKET_NAME": "abalone-bucket", "IMAGE_URI": "1.dkr.ecr.eu-west-1.amazonaws.com/a:1",
           "ROLE_ARN": "arn:aws:iam::123456789012:role/abalone-sagemaker", "EXECUTION_ID": "e1",
           "AWS_REGION": "eu-west-1"}
HELP_SCRIPTS = ["bin/build.py", "bin/deploy.py", "bin/bootstrap.py", "bin/teardown.py", "bin/run_workflow.py",
                "bin/continuous_training.py", "examples/release.py", "-m workflows.local_release", "-m mlops_core.local"]


def no_aws(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A shell with no credentials anywhere and nothing listening where AWS would be (port 9 is closed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in RELEASE}
    return {**env, "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true", **settings}


def script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [("bin/build.py", "train"), ("bin/bootstrap.py", "--project", "abalone", "--dry-run"),
                                  ("bin/teardown.py", "--project", "abalone", "--yes")])
def test_missing_credentials_are_one_line_and_exit_2(args, tmp_path):
    result = script(*args, env=no_aws(tmp_path, **RELEASE))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("configuration error: no usable AWS credentials") and "AWS_PROFILE" in line


def test_teardown_without_yes_refuses_before_any_aws_call(tmp_path):
    env = no_aws(tmp_path, AWS_REGION="eu-west-1", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    result = script("bin/teardown.py", "--project", "abalone", env=env)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "configuration error: teardown deletes every resource of project abalone; pass --yes to confirm"]


def test_every_settings_problem_is_reported_at_once_before_any_call(tmp_path):
    env = no_aws(tmp_path, AWS_ENDPOINT_URL="http://127.0.0.1:9",
                 **{k: v for k, v in RELEASE.items() if k not in ("MODEL_NAME", "EXECUTION_ID", "AWS_REGION")})
    result = script("bin/build.py", "train", env=env)
    assert result.returncode == 2, result.stderr
    problems = result.stderr.strip().splitlines()
    assert [p.split(":")[1].split()[0] for p in problems] == ["MODEL_NAME", "EXECUTION_ID", "AWS_REGION"]
    assert "--aws-region" in problems[2] and not re.search(r"--region\b", result.stderr)


def test_bootstrap_and_teardown_take_the_region_as_a_flag(tmp_path):
    result = script("bin/bootstrap.py", "--project", "abalone", "--aws-region", "eu-west-1", "--dry-run",
                    env=no_aws(tmp_path))
    assert "AWS_REGION" not in result.stderr and "no usable AWS credentials" in result.stderr


def help_of(command: str) -> str:
    result = subprocess.run([sys.executable, *command.split(), "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def options_without_help(text: str) -> list[str]:
    """Options of an argparse --help whose entry has no description."""
    lines = text.split("options:", 1)[1].splitlines()
    entries: list[list[str]] = []
    for line in lines:
        if re.match(r"^  -", line):
            entries.append([line])
        elif entries and line.startswith("    "):
            entries[-1].append(line)
    return [entry[0].split()[0] for entry in entries
            if entry[0].split()[0] not in ("-h,", "-h") and not re.search(r"\S  +\S", entry[0].strip())
            and len(entry) == 1]


@pytest.mark.parametrize("command", HELP_SCRIPTS)
def test_every_option_of_every_script_has_a_line_of_help(command):
    assert options_without_help(help_of(command)) == []


def test_help_lists_only_what_the_script_uses():
    teardown = help_of("bin/teardown.py")
    assert "--delete-data" in teardown and "--aws-region" in teardown
    for bootstrap_only in ("--kms-key-arn", "--epochs", "--threshold", "--build-stage", "--seed-branches"):
        assert bootstrap_only not in teardown
    assert "DEMO_THRESHOLD" not in help_of("-m workflows.local_release")


def test_the_example_takes_the_flags_its_errors_advise(tmp_path):
    env = no_aws(tmp_path, **{k: v for k, v in RELEASE.items() if k != "MODEL_NAME"})
    result = script("examples/release.py", env=env)
    assert result.returncode == 2 and "pass --model-name" in result.stderr
    assert "--model-name" in help_of("examples/release.py")
