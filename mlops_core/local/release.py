"""The local end-to-end release behind ``bin/demo``: no AWS account, no Docker.

Starts moto's server on 127.0.0.1 (the AWS control plane) and the local SageMaker runtime, bootstraps the
project into it, uploads the data, then runs the pipeline's stages by executing the build commands of the
same CodeBuild buildspecs the real pipeline uses (ContainerBuild is skipped: the working tree's container
code runs), decides the approval by the quality gate (or asks), deploys, calls the endpoint and prints a
summary. Everything the run produces goes to one output folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlops_core import codebuild
from mlops_core.aws import Clients
from mlops_core.cli import run
from mlops_core.local.data import abalone_data
from mlops_core.local.embedded import EmbeddedAws
from mlops_core.local.runtime import LOCAL_RUNTIME_ENV, LocalState
from mlops_core.naming import job_name, new_execution_id
from mlops_core.project import Project, bootstrap
from mlops_core.s3 import s3_uri

REPO = Path(__file__).resolve().parents[2]
BUILD_STAGES = ("Preprocess", "Train", "Evaluate")
STAGE_JOBS = {"Preprocess": "processing", "Train": "training", "Evaluate": "processing"}
FEATURES = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight"


@dataclass
class StageRun:
    """One stage's outcome: wall time, exit code, log, and the orchestration overhead of its job."""

    stage: str
    seconds: float
    exit_code: int
    log: str
    job_seconds: float | None = None
    overhead_seconds: float | None = None
    exported: dict[str, str] = field(default_factory=dict)


@contextmanager
def embedded_aws(state_dir: Path, region: str, keep_state: bool) -> Iterator[EmbeddedAws]:
    """moto's server with this run's environment set; with ``keep_state`` its API calls are recorded
    in the state folder and replayed at the next start, so a second run continues the same project."""
    recording = state_dir / "moto-recording.jsonl" if keep_state else None
    with EmbeddedAws(region=region, recording=recording) as aws, aws.activated():
        os.environ[LOCAL_RUNTIME_ENV] = str(state_dir / "runtime")
        try:
            yield aws
        finally:
            os.environ.pop(LOCAL_RUNTIME_ENV, None)


def stage_script(project: Project, stage: str) -> str:
    """The build-phase commands of the stage's buildspec, plus writing out its exported variables.

    The install phase (``pip install -e .``) is skipped: this virtualenv already has the package.
    """
    spec = codebuild.buildspec(project, stage)
    commands = list(spec["phases"]["build"]["commands"])
    commands += [f'printf "%s" "${name}" > .exported-{name}' for name in spec["env"].get("exported-variables", [])]
    return "set -eo pipefail\n" + "\n".join(commands)


def job_timing(state: LocalState, stage: str, job_name: str, finished: float) -> tuple[float | None, float | None]:
    """(job run time, seconds from the job's end to the stage's end) from the local runtime's record."""
    record = state.read(STAGE_JOBS[stage], job_name) if stage in STAGE_JOBS else None
    if not record or not record.get("ended") or not record.get("started"):
        return None, None
    started, ended = (dt.datetime.fromisoformat(record[k]).timestamp() for k in ("started", "ended"))
    return ended - started, finished - ended


def run_stage(project: Project, stage: str, execution_id: str, out: Path, clients: Clients,
              echo: Callable[[str], None]) -> StageRun:
    """Run one stage's buildspec commands in a workspace, as CodeBuild would, logging to ``out/logs``."""
    workspace = out / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    for folder in ("bin", "model_container"):
        link = workspace / folder
        if not link.exists():
            link.symlink_to(REPO / folder)
    env = {**os.environ, **codebuild.resolve_action_environment(project, stage, execution_id, clients=clients),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONUNBUFFERED": "1"}
    log_path = out / "logs" / f"{stage.lower()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(["bash", "-c", stage_script(project, stage)], cwd=workspace, env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            echo(progress_line(stage, line))
        code = process.wait()
    finished = time.time()
    seconds = time.monotonic() - started
    exported = {path.name.removeprefix(".exported-"): path.read_text()
                for path in workspace.glob(".exported-*")}
    for path in workspace.glob(".exported-*"):
        path.unlink()
    state = LocalState(os.environ[LOCAL_RUNTIME_ENV])
    job_seconds, overhead = job_timing(state, stage, job_name(project.model, stage, execution_id), finished)
    return StageRun(stage, round(seconds, 2), code, str(log_path), job_seconds and round(job_seconds, 2),
                    overhead and round(overhead, 2), exported)


def progress_line(stage: str, line: str) -> str:
    """A short progress line from a stage's output: status changes and results, not every log detail."""
    text = line.rstrip()
    try:
        event = json.loads(text)
    except ValueError:
        return f"  [{stage}] {text}" if text else ""
    if not isinstance(event, dict):
        return f"  [{stage}] {text}"
    if event.get("event") == "status_changed":
        secondary = f" ({event['secondary_status']})" if event.get("secondary_status") else ""
        return f"  [{stage}] {event.get('resource')}: {event.get('status')}{secondary} at {event.get('elapsed_s')} s"
    if event.get("level") in ("warning", "error") or event.get("event") in ("job_started", "job_attached",
                                                                           "deployed", "registered"):
        details = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "timestamp", "level",
                                                                                 "component"))
        return f"  [{stage}] {event.get('event')} {details}"
    return ""


def sample_rows(data: Path, count: int) -> list[list[str]]:
    rows = [line.strip().split(",") for line in data.read_text().splitlines() if line.strip()]
    step = max(1, len(rows) // max(count, 1))
    return rows[::step][:count]


def call_endpoint(endpoint: str, rows: list[list[str]], clients: Clients) -> list[dict]:
    """One request per row (as a client would send them), answers parsed from JSON."""
    answers = []
    for row in rows:
        response = clients.sagemaker_runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=",".join(row[:8]))
        answers.append({"row": ",".join(row[:8]), "actual_rings": int(row[8]),
                        "prediction": json.loads(response["Body"].read())})
    return answers


def read_report(bucket: str, key: str, clients: Clients) -> dict:
    try:
        return json.loads(clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except clients.s3.exceptions.NoSuchKey:
        return {}


def approve(summary: str, interactive: bool) -> bool:
    """The approval stage: the quality gate's verdict, or a person's answer with --approve interactive."""
    if not interactive:
        return summary.rstrip().endswith("PASS")
    answer = input(f"Approval: {summary}\nDeploy this model? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def run_release(args: argparse.Namespace, echo: Callable[[str], None] = print) -> dict:
    """The whole local release; returns the summary (also written to ``out/summary.json``)."""
    from mlops_core.sagemaker.capture import read_capture
    from mlops_core.sagemaker.endpoints import delete_endpoint
    from mlops_core.sagemaker.registry import find_version

    data = abalone_data(args.data)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    state_dir = Path(args.state).resolve() if args.state else out / "state"
    summary: dict = {"data": str(data), "output_folder": str(out), "stages": []}
    release_started = time.monotonic()
    with embedded_aws(state_dir, args.region, keep_state=bool(args.state)) as aws:
        clients = Clients()
        project = Project(name=args.project, account_id=clients.account_id(), region=args.region,
                          epochs=args.epochs, threshold=args.threshold, tls_only=False)
        echo(f"AWS (moto) on {aws.endpoint_url}; local SageMaker runtime in {state_dir / 'runtime'}")
        started = time.monotonic()
        changed = [r for r in bootstrap(project, clients=clients) if r.changed]
        echo(f"bootstrap: {len(changed)} resources created or updated in {time.monotonic() - started:.1f} s")
        data_key = f"{project.model}/data/current/abalone.csv"
        clients.s3.upload_file(str(data), project.bucket, data_key)
        execution_id = args.execution_id or new_execution_id()
        summary.update(project=project.name, execution_id=execution_id, threshold=args.threshold)
        echo(f"release {execution_id} of model {project.model}")
        endpoint = project.model
        try:
            for stage in BUILD_STAGES:
                if not run_and_record(project, stage, execution_id, out, clients, summary, echo):
                    return finish(summary, out, echo, ok=False)
            evaluation_summary = summary["stages"][-1]["exported"].get("EVALUATION_SUMMARY", "")
            approved = approve(evaluation_summary, args.approve == "interactive")
            summary["approval"] = {"summary": evaluation_summary, "approved": approved, "by": args.approve}
            echo(f"approval ({args.approve}): {evaluation_summary} -> {'approved' if approved else 'rejected'}")
            if approved and not run_and_record(project, "Deploy", execution_id, out, clients, summary, echo):
                return finish(summary, out, echo, ok=False)
            release_prefix = f"{project.model}/{execution_id}"
            report = read_report(project.bucket, f"{release_prefix}/preprocess/report/summary.json", clients)
            evaluation = read_report(project.bucket, f"{release_prefix}/evaluation/evaluation.json", clients)
            save_outputs(project.bucket, f"{release_prefix}/evaluation/", out / "evaluation", clients)
            summary["rows"] = report
            summary["rmse"] = evaluation.get("regression_metrics", {}).get("rmse", {}).get("value")
            version = find_version(project.model_package_group, execution_id, clients=clients)
            summary["registered_version"] = version and {
                "arn": version["ModelPackageArn"], "version": version.get("ModelPackageVersion"),
                "approval": version.get("ModelApprovalStatus")}
            if approved:
                described = clients.sagemaker.describe_endpoint(EndpointName=endpoint)
                summary["endpoint"] = {"name": endpoint, "status": described["EndpointStatus"],
                                       "config": described["EndpointConfigName"]}
                predictions = call_endpoint(endpoint, sample_rows(data, args.samples), clients)
                summary["predictions"] = predictions
                captured = list(read_capture(s3_uri(project.bucket, project.model, "data-capture"), endpoint,
                                             clients=clients))
                summary["data_capture"] = {"requests_sent": len(predictions), "records": len(captured)}
            summary["total_seconds"] = round(time.monotonic() - release_started, 1)
            return finish(summary, out, echo, ok=True)
        finally:
            if args.keep_serving and summary.get("endpoint"):
                serve_until_interrupted(state_dir, endpoint, echo)
            if summary.get("endpoint") or LocalState(state_dir / "runtime").read("endpoints", endpoint):
                delete_endpoint(endpoint, clients=clients)


def run_and_record(project: Project, stage: str, execution_id: str, out: Path, clients: Clients, summary: dict,
                   echo: Callable[[str], None]) -> bool:
    echo(f"stage {stage}: started")
    result = run_stage(project, stage, execution_id, out, clients, echo)
    summary["stages"].append(asdict(result))
    overhead = f", overhead after the job {result.overhead_seconds} s" if result.overhead_seconds is not None else ""
    echo(f"stage {stage}: {'succeeded' if result.exit_code == 0 else 'FAILED'} in {result.seconds} s{overhead}"
         + ("" if result.exit_code == 0 else f" (exit {result.exit_code}; log {result.log})"))
    return result.exit_code == 0


def save_outputs(bucket: str, prefix: str, target: Path, clients: Clients) -> None:
    for item in clients.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        path = target / item["Key"][len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        clients.s3.download_file(bucket, item["Key"], str(path))


def serve_until_interrupted(state_dir: Path, endpoint: str, echo: Callable[[str], None]) -> None:
    record = LocalState(state_dir / "runtime").read("endpoints", endpoint) or {}
    echo(f"endpoint {endpoint} serving on http://127.0.0.1:{record.get('port')}/invocations; Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("stopping")


def finish(summary: dict, out: Path, echo: Callable[[str], None], ok: bool) -> dict:
    summary["ok"] = ok
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    for line in summary_lines(summary):
        echo(line)
    return summary


def summary_lines(summary: dict) -> list[str]:
    lines = ["", "=== release summary ==="]
    rows = summary.get("rows") or {}
    if rows:
        lines.append(f"rows: {json.dumps(rows)}")
    for stage in summary["stages"]:
        job = f", job {stage['job_seconds']} s, overhead {stage['overhead_seconds']} s" if stage.get("job_seconds") else ""
        lines.append(f"stage {stage['stage']:<10} exit {stage['exit_code']} in {stage['seconds']} s{job}")
    if summary.get("rmse") is not None:
        verdict = "under" if summary["rmse"] <= summary["threshold"] else "OVER"
        lines.append(f"RMSE {summary['rmse']:.3f} ({verdict} the threshold {summary['threshold']})")
    if summary.get("approval"):
        lines.append(f"approval: {'approved' if summary['approval']['approved'] else 'rejected'}")
    if summary.get("registered_version"):
        version = summary["registered_version"]
        lines.append(f"registered: version {version['version']} ({version['approval']}) {version['arn']}")
    if summary.get("endpoint"):
        lines.append(f"endpoint {summary['endpoint']['name']}: {summary['endpoint']['status']} "
                     f"on config {summary['endpoint']['config']}")
    for item in summary.get("predictions", []):
        prediction = item["prediction"]
        lines.append(f"  {item['row']} -> {prediction} (actual rings {item['actual_rings']})")
    if summary.get("data_capture"):
        capture = summary["data_capture"]
        lines.append(f"data capture: {capture['records']} records for {capture['requests_sent']} requests")
    if "total_seconds" in summary:
        lines.append(f"total {summary['total_seconds']} s; outputs in {summary['output_folder']}")
    lines.append("RELEASE OK" if summary.get("ok") else "RELEASE FAILED")
    return lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="abalone.data (else $ABALONE_DATA, else downloaded from UCI and cached)")
    p.add_argument("--out", default=str(REPO / "out" / "demo"), help="output folder (default out/demo)")
    p.add_argument("--state", help="keep AWS and runtime state in this folder between runs; a second run "
                                   "is a new release of the same project")
    p.add_argument("--project", default="abalone")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--epochs", type=int, default=100, help="training epochs (early stopping may end sooner)")
    p.add_argument("--threshold", type=float, default=2.1, help="maximum RMSE of the quality gate")
    p.add_argument("--approve", choices=["gate", "interactive"], default="gate")
    p.add_argument("--samples", type=int, default=5, help="rows sent to the endpoint at the end")
    p.add_argument("--execution-id", help="resume this release instead of starting a new one")
    p.add_argument("--keep-serving", action="store_true", help="keep the endpoint up until Ctrl-C")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.state and not args.execution_id:  # a fresh run starts from a fresh embedded account
        shutil.rmtree(Path(args.out) / "state", ignore_errors=True)
    return 0 if run_release(args)["ok"] else 1


if __name__ == "__main__":
    run(main)
