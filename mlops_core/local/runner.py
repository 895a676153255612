"""The detached process behind a local job or endpoint deployment (started by mlops_core.local.runtime).

    python -m mlops_core.local.runner --state DIR job processing|training NAME
    python -m mlops_core.local.runner --state DIR endpoint NAME CONFIG

A job: download inputs from S3 into the ``/opt/ml`` layout under a work folder, write the config files
SageMaker writes, run the container entry point, upload outputs (``model.tar.gz`` for training), record
Completed or Failed (reason from ``output/failure``). An endpoint: fetch and unpack the model, start
``serve`` on a free loopback port, and switch to it only once it answers ``/ping``; a failed update keeps
the old server and records the failure, as SageMaker does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from mlops_core.aws import Clients
from mlops_core.local.runtime import (
    ENGINE_ENV,
    STATE_LABEL,
    LocalState,
    container_engine,
    container_entry_point,
    image_exists,
    kill_group,
    now_iso,
)
from mlops_core.s3 import download_file, list_keys, parse_s3_uri, read_json, s3_uri, upload_file
from mlops_core.sagemaker.monitoring import is_analyzer_image

OPT_ML = "/opt/ml"
PING_TIMEOUT_ENV = "MLOPS_LOCAL_PING_TIMEOUT"
RESOURCE_CONFIG = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
PROGRESS = "progress:"  # the prefix of the container's progress lines (model_container/training.py)
PROGRESS_POLL_S = 2.0


def under_root(root: Path, container_path: str) -> Path:
    """Map a container path (``/opt/ml/...``) into the job's work folder."""
    if not (container_path == OPT_ML or container_path.startswith(OPT_ML + "/")):
        raise ValueError(f"local runtime only maps paths under {OPT_ML}: {container_path}")
    return root / container_path[len(OPT_ML):].lstrip("/")


def download_prefix(uri: str, target: Path, clients: Clients) -> int:
    """Download an S3 object, or every object under a prefix, into ``target``; returns the file count."""
    bucket, prefix = parse_s3_uri(uri)
    count = 0
    for item in list_keys(uri, clients=clients):
        key = item["Key"]
        relative = Path(key).name if key == prefix else key[len(prefix):].lstrip("/")
        if relative and not key.endswith("/"):
            download_file(s3_uri(bucket, key), target / relative, clients=clients)
            count += 1
    if count == 0:
        raise FileNotFoundError(f"ClientError: no S3 objects found under {uri}")
    return count


def upload_folder(folder: Path, uri: str, clients: Clients) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        upload_file(path, s3_uri(*parse_s3_uri(uri), path.relative_to(folder).as_posix()), clients=clients)


def tar_folder(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


def failure_reason(root: Path, returncode: int, log: Path) -> str:
    failure = root / "output" / "failure"
    detail = failure.read_text().strip() if failure.exists() else ""
    if not detail:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        detail = f"exit code {returncode}; last output: {' | '.join(tail) or 'none'}"
    return f"AlgorithmError: {detail} (container log: {log})"


def last_progress(log: Path) -> str | None:
    """The newest ``progress: ...`` line the container printed (its message), if any."""
    try:
        with open(log, "rb") as text:
            text.seek(max(0, log.stat().st_size - 8192))
            lines = text.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    return next((line[len(PROGRESS):].strip() for line in reversed(lines) if line.startswith(PROGRESS)), None)


def engine_command(state: LocalState, image: str | None, args: list[str], env: dict, mounts: dict[Path, str], *,
                   entrypoint: list[str] | None = None, publish: str | None = None) -> tuple[list[str], dict]:
    """(argv, environment) running ``args`` as SageMaker would: in ``image`` with ``mounts`` (host folder -> path
    in the container) under the container engine, or, with the process engine, the container's app.py with
    OPT_ML_ROOT standing for /opt/ml."""
    analyzer = is_analyzer_image(image or "")  # AWS's Model Monitor image is not here: its stand-in runs instead
    if analyzer or os.environ.get(ENGINE_ENV, "process") != "container":
        root = next(host for host, inside in mounts.items() if inside == OPT_ML)
        if analyzer:
            env = {k: str(under_root(root, v)) if v.startswith(OPT_ML) else v for k, v in env.items()}
        argv = ["-m", "mlops_core.local.analyzer"] if analyzer else [str(container_entry_point()), *args]
        return [sys.executable, *argv], {**os.environ, **env, "OPT_ML_ROOT": str(root)}
    engine = container_engine()
    if engine is None:
        raise FileNotFoundError("no container engine (podman or docker) on this machine: run bin/container-engine")
    if not image or not image_exists(image):
        raise FileNotFoundError(f"image {image} is not in the local container engine: build it first (bin/demo "
                                "--engine container builds the release's images)")
    argv = [engine, "run", "--rm", "--label", f"{STATE_LABEL}={state.root}"]
    for host, inside in mounts.items():
        argv += ["-v", f"{host}:{inside}"]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    if entrypoint:
        argv += ["--entrypoint", json.dumps(entrypoint)]
    if publish:
        argv += ["-p", publish]
    return [*argv, image, *args], dict(os.environ)


def run_container(state: LocalState, kind: str, name: str, root: Path, args: list[str], env: dict,
                  image: str | None = None, entrypoint: list[str] | None = None) -> int:
    """Run the container's entry point; while it runs, its newest progress line becomes the job's status message."""
    log = root.parent / "container.log"
    argv, environment = engine_command(state, image, args, env, {root: OPT_ML}, entrypoint=entrypoint)
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, cwd=root, env=environment,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        state.update(kind, name, container_pid=process.pid)
        shown = None
        while True:
            try:
                return process.wait(timeout=PROGRESS_POLL_S)
            except subprocess.TimeoutExpired:
                message = last_progress(log)
                if message and message != shown:
                    shown = message
                    state.update(kind, name, status_message=message)


LOG_GROUPS = {"processing": "/aws/sagemaker/ProcessingJobs", "training": "/aws/sagemaker/TrainingJobs"}
LOG_BATCH = 1000


def publish_log(kind: str, name: str, log: Path, clients: Clients) -> None:
    """The container's output as the job's CloudWatch log stream ``{name}/algo-1-{time}``, where SageMaker
    puts it, so error messages that point at CloudWatch hold here too. Best effort: a failure is noted in
    the runner's log, the job's outcome stands."""
    group, stream = LOG_GROUPS[kind], f"{name}/algo-1-{int(time.time())}"
    try:
        logs = clients.logs
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        lines = [line or " " for line in log.read_text(errors="replace").splitlines()] or ["(no output)"]
        stamp = int(time.time() * 1000)
        for start in range(0, len(lines), LOG_BATCH):
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": stamp, "message": line[:100_000]}
                                           for line in lines[start:start + LOG_BATCH]])
    except Exception as exc:  # noqa: BLE001 - the logs are a copy; the job's outcome must not depend on them
        print(f"could not publish {log} to CloudWatch Logs {group}/{stream}: {exc}", flush=True)


def run_job(state: LocalState, kind: str, name: str, clients: Clients) -> None:
    record = state.read(kind, name)
    assert record is not None, f"no local record for {kind} job {name}"
    request = record["request"]
    root = state.workdir(kind, name) / "opt_ml"
    root.mkdir(parents=True, exist_ok=True)
    log = root.parent / "container.log"
    state.update(kind, name, started=now_iso(), secondary="Downloading", log=str(log))
    specification = request.get("AppSpecification") or request.get("AlgorithmSpecification", {})
    image = specification.get("ImageUri") or specification.get("TrainingImage")
    try:
        if kind == "processing":
            args = prepare_processing(request, root, clients)
        else:
            args = prepare_training(request, root, clients)
        state.update(kind, name, secondary="Training" if kind == "training" else "Processing")
        returncode = run_container(state, kind, name, root, args, request.get("Environment", {}), image,
                                   specification.get("ContainerEntrypoint"))
    except Exception as exc:  # noqa: BLE001 - any input or engine problem fails the job with its reason
        state.update(kind, name, status="Failed", secondary="Failed", ended=now_iso(),
                     failure_reason=f"ClientError: {exc}")
        return
    publish_log(kind, name, log, clients)
    if state.read(kind, name)["status"] == "Stopping":
        state.update(kind, name, status="Stopped", secondary="Stopped", ended=now_iso())
        return
    if returncode != 0:
        reason = failure_reason(root, returncode, log)
        state.update(kind, name, status="Failed", secondary="Failed", ended=now_iso(), failure_reason=reason,
                     exit_message=reason)
        return
    state.update(kind, name, secondary="Uploading")
    try:
        artifacts = finish_processing(request, root, clients) if kind == "processing" else \
            finish_training(request, name, root, clients)
    except Exception as exc:  # noqa: BLE001
        state.update(kind, name, status="Failed", secondary="Failed", ended=now_iso(),
                     failure_reason=f"ClientError: uploading outputs failed: {exc}")
        return
    state.update(kind, name, status="Completed", secondary="Completed", ended=now_iso(), model_artifacts=artifacts)


def download_manifest(uri: str, target: Path, clients: Clients) -> int:
    """Download the objects a SageMaker manifest file lists (``[{"prefix": "s3://b/p/"}, "key", ...]``)."""
    prefix, *relatives = read_json(uri, clients=clients)
    for relative in relatives:
        download_file(prefix["prefix"].rstrip("/") + "/" + relative, target / relative, clients=clients)
    return len(relatives)


def prepare_processing(request: dict, root: Path, clients: Clients) -> list[str]:
    for item in request.get("ProcessingInputs", []):
        source = item.get("S3Input")
        if source and source.get("S3DataType") == "ManifestFile":
            download_manifest(source["S3Uri"], under_root(root, source["LocalPath"]), clients)
        elif source:
            download_prefix(source["S3Uri"], under_root(root, source["LocalPath"]), clients)
    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "processingjobconfig.json").write_text(json.dumps(request, default=str))
    (config / "resourceconfig.json").write_text(json.dumps(RESOURCE_CONFIG))
    for item in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
        under_root(root, item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    return list(request["AppSpecification"].get("ContainerArguments", []))


def finish_processing(request: dict, root: Path, clients: Clients) -> None:
    for item in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
        output = item["S3Output"]
        upload_folder(under_root(root, output["LocalPath"]), output["S3Uri"], clients)


def prepare_training(request: dict, root: Path, clients: Clients) -> list[str]:
    channels = {}
    for channel in request.get("InputDataConfig", []):
        source = channel["DataSource"]["S3DataSource"]
        download_prefix(source["S3Uri"], root / "input" / "data" / channel["ChannelName"], clients)
        channels[channel["ChannelName"]] = {"TrainingInputMode": channel.get("InputMode", "File"),
                                            "S3DistributionType": source.get("S3DataDistributionType",
                                                                             "FullyReplicated"),
                                            "RecordWrapperType": channel.get("RecordWrapperType", "None")}
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters", {})))
    (config / "resourceconfig.json").write_text(json.dumps(RESOURCE_CONFIG))
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    for folder in ("model", "output/data"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return ["train"]


def finish_training(request: dict, name: str, root: Path, clients: Clients) -> str:
    output = s3_uri(*parse_s3_uri(request["OutputDataConfig"]["S3OutputPath"]), name, "output")
    artifact = s3_uri(*parse_s3_uri(output), "model.tar.gz")
    upload_file(tar_folder(root / "model", root.parent / "model.tar.gz"), artifact, clients=clients)
    if any((root / "output" / "data").iterdir()):
        upload_file(tar_folder(root / "output" / "data", root.parent / "output.tar.gz"),
                    s3_uri(*parse_s3_uri(output), "output.tar.gz"), clients=clients)
    return artifact


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers_ping(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start_server(name: str, config_name: str, state: LocalState, clients: Clients) -> tuple[dict, str | None]:
    """Start ``serve`` for one endpoint config; (server facts, failure reason or None)."""
    sagemaker = clients.sagemaker
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    variant = config["ProductionVariants"][0]
    container = sagemaker.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
    root = state.workdir("endpoints", name) / config_name / "opt_ml"
    (root / "model").mkdir(parents=True, exist_ok=True)
    archive = download_file(container["ModelDataUrl"], root.parent / "model.tar.gz", clients=clients)
    with tarfile.open(archive) as tar:
        tar.extractall(root / "model", filter="data")
    port = free_port()
    log = root.parent / "serve.log"
    workers = {"MODEL_SERVER_WORKERS": os.environ.get("MODEL_SERVER_WORKERS", "1")}
    if os.environ.get(ENGINE_ENV) == "container":  # the image's own /opt/ml, the model read-only, loopback only
        argv, env = engine_command(state, container["Image"], ["serve"], {**workers, **container.get("Environment", {})},
                                   {root / "model": f"{OPT_ML}/model:ro"}, publish=f"127.0.0.1:{port}:8080")
    else:
        argv, env = engine_command(state, None, ["serve"], {
            "MODEL_SERVER_HOST": "127.0.0.1", **workers, **container.get("Environment", {}),
            "SAGEMAKER_BIND_TO_PORT": str(port)}, {root: OPT_ML})
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   start_new_session=True)
    facts = {"server_pid": process.pid, "port": port, "config": config_name, "variant": variant["VariantName"],
             "data_capture": config.get("DataCaptureConfig"), "log": str(log)}
    timeout = float(os.environ.get(PING_TIMEOUT_ENV, "120"))
    ready = Retrying(retry=retry_if_result(lambda ok: not ok and process.poll() is None),
                     wait=wait_fixed(0.1), stop=stop_after_delay(timeout), retry_error_callback=lambda _s: False)
    if ready(answers_ping, port):
        return facts, None
    kill_group(process.pid)
    tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:]) if log.exists() else ""
    return facts, (f"The primary container for production variant {variant['VariantName']} did not pass the "
                   f"ping health check within {timeout:.0f} s (log: {log}; last output: {tail or 'none'})")


def run_deployment(state: LocalState, name: str, config_name: str, clients: Clients) -> None:
    previous = state.read("endpoints", name) or {}
    try:
        facts, failure = start_server(name, config_name, state, clients)
    except Exception as exc:  # noqa: BLE001 - any problem fails this deployment with its reason
        facts, failure = {}, f"{type(exc).__name__}: {exc}"
    if failure is None:
        state.update("endpoints", name, status="InService", failure_reason=None, pending_config=None,
                     last_modified=now_iso(), **facts)
        if previous.get("server_pid") and previous.get("server_pid") != facts["server_pid"]:
            kill_group(previous["server_pid"])
    elif previous.get("config"):  # an update: keep serving the old config, report like SageMaker
        state.update("endpoints", name, status="InService", pending_config=None, last_modified=now_iso(),
                     failure_reason=f"Failed to update endpoint to {config_name}: {failure}")
    else:
        state.update("endpoints", name, status="Failed", pending_config=None, last_modified=now_iso(),
                     failure_reason=failure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", required=True)
    parser.add_argument("what", choices=["job", "endpoint"])
    parser.add_argument("args", nargs="+")
    args = parser.parse_args(argv)
    state, clients = LocalState(args.state), Clients()
    started = time.monotonic()
    if args.what == "job":
        kind, name = args.args
        run_job(state, kind, name, clients)
    else:
        name, config_name = args.args
        run_deployment(state, name, config_name, clients)
    print(f"{args.what} {' '.join(args.args)} finished in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
