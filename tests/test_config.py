import argparse
import subprocess
import sys

import pytest

from mlops_core.config import BY_ATTR, SETTINGS, add_config_arguments, config_from_args, load_config
from mlops_core.errors import ConfigError

GOOD = {
    "PROJECT_NAME": "abalone",
    "MODEL_NAME": "abalone",
    "PIPELINE_NAME": "abalone-pipeline",
    "BUCKET_NAME": "abalone-data-123",
    "ROLE_ARN": "arn:aws:iam::123456789012:role/abalone-sagemaker",
    "IMAGE_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/abalone",
    "EXECUTION_ID": "8f14e45f-ceea-467f-a8f1-0123456789ab",
    "THRESHOLD": "2.1",
    "EPOCHS": "50",
    "BATCH_SIZE": "16",
    "AWS_REGION": "eu-west-1",
    "MODEL_PACKAGE_GROUP": "abalone-models",
    "ENDPOINT_NAME": "abalone-prod",
    "INSTANCE_TYPE": "ml.m5.large",
    "COMPARE_TO_LATEST_APPROVED": "true",
    "RETRY_FAILED": "false",
    "GATE_TOLERANCE": "0.05",
}
BAD = {
    "PROJECT_NAME": "Abalone_Project",
    "MODEL_NAME": "abalone model",
    "PIPELINE_NAME": "pipe line",
    "BUCKET_NAME": "Bad_Bucket",
    "ROLE_ARN": "abalone-role",
    "IMAGE_URI": "not an image",
    "EXECUTION_ID": "id/with/slashes",
    "THRESHOLD": "-1",
    "EPOCHS": "ten",
    "BATCH_SIZE": "0",
    "AWS_REGION": "Europe",
    "MODEL_PACKAGE_GROUP": "abalone_models",
    "ENDPOINT_NAME": "-abalone",
    "INSTANCE_TYPE": "m5.large",
    "COMPARE_TO_LATEST_APPROVED": "maybe",
    "RETRY_FAILED": "sometimes",
    "GATE_TOLERANCE": "-0.1",
}


def test_settings_and_config_fields_agree():
    assert set(GOOD) == {s.env for s in SETTINGS} == set(BAD)
    from dataclasses import fields

    from mlops_core.config import Config
    assert {f.name for f in fields(Config)} == set(BY_ATTR)


def test_all_good_values_parse_to_types():
    config = load_config(required=GOOD, env=GOOD)
    assert config.threshold == 2.1 and config.epochs == 50 and config.batch_size == 16
    assert config.role_arn == GOOD["ROLE_ARN"] and config.aws_region == "eu-west-1"
    assert config.compare_to_latest_approved is True
    assert load_config(env={"COMPARE_TO_LATEST_APPROVED": "0"}).compare_to_latest_approved is False


@pytest.mark.parametrize("variable", sorted(GOOD))
def test_each_missing_required_variable_has_its_own_message(variable):
    env = {k: v for k, v in GOOD.items() if k != variable}
    with pytest.raises(ConfigError) as info:
        load_config(required=GOOD, env=env)
    assert len(info.value.problems) == 1
    message = info.value.problems[0]
    assert message.startswith(f"{variable} is not set")
    assert BY_ATTR[variable.lower()].expected in message and BY_ATTR[variable.lower()].flag in message


@pytest.mark.parametrize("variable", sorted(BAD))
def test_each_malformed_variable_has_its_own_message(variable):
    env = {**GOOD, variable: BAD[variable]}
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert info.value.problems == [
        f"{variable}={BAD[variable]!r} is malformed: expected {BY_ATTR[variable.lower()].expected}"]


def test_all_problems_reported_together():
    with pytest.raises(ConfigError) as info:
        load_config(required=["MODEL_NAME", "BUCKET_NAME"], env={"EPOCHS": "x"})
    assert len(info.value.problems) == 3


def test_defaults_when_optional_values_absent():
    config = load_config(env={})
    assert (config.threshold, config.epochs, config.batch_size, config.model_name) == (None, 100, 64, None)


def test_aws_default_region_is_accepted():
    assert load_config(env={"AWS_DEFAULT_REGION": "us-east-1"}).aws_region == "us-east-1"


def test_flags_override_environment():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, ["model_name", "EPOCHS"])
    args = parser.parse_args(["--model-name", "other", "--epochs", "7"])
    config = config_from_args(args, required=["model_name"], env=GOOD)
    assert config.model_name == "other" and config.epochs == 7 and config.bucket_name == GOOD["BUCKET_NAME"]


def test_a_bad_flag_is_reported_under_its_variable():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, ["epochs"])
    with pytest.raises(ConfigError, match="EPOCHS='0' is malformed"):
        config_from_args(parser.parse_args(["--epochs", "0"]), env={})


def test_config_errors_make_no_aws_call():
    """Loading config imports no AWS client machinery and a bad config fails before any client exists."""
    code = ("import sys\n"
            "from mlops_core.config import load_config\n"
            "from mlops_core.errors import ConfigError\n"
            "try:\n    load_config(required=['BUCKET_NAME'], env={})\n"
            "except ConfigError:\n    pass\n"
            "print('boto3' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
