"""The one place that builds boto3 sessions and clients.

Every public function of mlops_core takes ``clients: Clients | None``. Pass ``Clients(session=...)`` to
use your own session, ``Clients(sagemaker=my_client)`` to use your own (for example Stubber-wrapped)
client, or nothing to build clients from the environment. There are no module-level clients.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from mlops_core.errors import ConfigError

DEFAULT_MAX_ATTEMPTS = 10
USER_AGENT_EXTRA = "mlops-core"


def botocore_config(mode: str = "standard", max_attempts: int = DEFAULT_MAX_ATTEMPTS, **kwargs: Any) -> Config:
    """botocore Config with retries (throttling, 5xx, connection errors) on by default."""
    return Config(retries={"mode": mode, "max_attempts": max_attempts},
                  user_agent_extra=USER_AGENT_EXTRA, **kwargs)


def resolve_region(session: boto3.Session | None = None, region: str | None = None) -> str:
    """The region to use: explicit, else the session's, else AWS_REGION / AWS_DEFAULT_REGION."""
    found = (region or (session.region_name if session else None)
             or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    if not found:
        raise ConfigError(
            "AWS_REGION is not set: expected an AWS region like eu-west-1 (export AWS_REGION=... or pass "
            "--aws-region, or set region in ~/.aws/config)"
        )
    return found


class Clients:
    """A boto3 session and the clients built from it, created on first use and then reused.

    Clients are built with retries (``botocore_config``) and honour ``AWS_ENDPOINT_URL`` (and the
    per-service ``AWS_ENDPOINT_URL_<SERVICE>`` variables), so the same code runs against AWS, moto's
    server or the embedded local AWS (``bin/local-aws``). Keyword arguments named after a service
    (``sagemaker=...``, ``sagemaker_runtime=...``) supply ready-made clients, which are used as they are.
    """

    def __init__(self, session: boto3.Session | None = None, *, region: str | None = None,
                 endpoint_url: str | None = None, config: Config | None = None, **clients: Any):
        self._session = session
        self._region = region
        self._endpoint_url = endpoint_url
        self._config = config or botocore_config()
        self._given: dict[str, Any] = {name.replace("_", "-"): c for name, c in clients.items()}
        self._clients: dict[str, Any] = dict(self._given)
        self._pollers: dict[str, Any] = {}

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            self._session = boto3.Session(region_name=self.region)
        return self._session

    @property
    def region(self) -> str:
        if self._region is None:
            self._region = resolve_region(self._session)
        return self._region

    def get(self, service: str) -> Any:
        """The client for ``service`` (boto3 name, e.g. "sagemaker-runtime"), built once."""
        client = self._clients.get(service)
        if client is None:
            client = self._build(service)
            self._clients[service] = client
        return client

    def poller(self, service: str) -> Any:
        """The client of the polling engine's describe calls: botocore retries off, so that the engine's own
        schedule is the only retry layer (a client given to the constructor is used as it is)."""
        client = self._given.get(service) or self._pollers.get(service)
        if client is None:
            client = self._build(service, self._config.merge(Config(retries={"total_max_attempts": 1})))
            self._pollers[service] = client
        return client

    def _build(self, service: str, config: Config | None = None) -> Any:
        return self.session.client(service, region_name=self.region, endpoint_url=self._endpoint_url,
                                   config=config or self._config)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name.replace("_", "-"))

    def account_id(self) -> str:
        return self.get("sts").get_caller_identity()["Account"]


def resolve(clients: Clients | None) -> Clients:
    """``clients`` as given, or a new set built from the environment."""
    return clients if clients is not None else Clients()


NOT_FOUND_CODES = frozenset({
    "ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity", "NoSuchBucket", "NoSuchKey", "404",
    "NotFound", "ParameterNotFound", "RepositoryNotFoundException", "RepositoryDoesNotExistException",
    "PipelineNotFoundException", "PipelineExecutionNotFoundException", "StateMachineDoesNotExist",
    "ExecutionDoesNotExist", "NoSuchLifecyclePolicy", "LifecyclePolicyNotFoundException",
    "NoSuchBucketPolicy", "ObjectNotFoundException",
})


def is_not_found(exc: BaseException) -> bool:
    """True when an AWS error says the resource does not exist (SageMaker says so in a ValidationException)."""
    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if code in NOT_FOUND_CODES:
        return True
    return code == "ValidationException" and any(
        phrase in message.lower() for phrase in ("could not find", "does not exist", "cannot find", "not found"))


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError, else None."""
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None


def partition_of(region: str) -> str:
    """The ARN partition of a region: aws, aws-cn or aws-us-gov."""
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
