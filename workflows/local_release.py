"""The local end-to-end release behind ``bin/demo``: no AWS account, no Docker.

Starts the embedded AWS on 127.0.0.1 (moto's server as the control plane, the local SageMaker runtime behind
the same gateway), bootstraps the project into it, uploads the data, then runs the pipeline's stages by executing the build commands of the
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

from mlops_core.aws import Clients
from mlops_core.cli import run
from mlops_core.local.embedded import EmbeddedAws
from mlops_core.logs import configure_logging
from mlops_core.naming import job_name, new_execution_id
from mlops_core.project import Project, bootstrap, buildspecs
from mlops_core.project.release import release_images
from mlops_core.s3 import s3_uri
from mlops_core.sagemaker.jobs import PROCESSING, TRAINING
from workflows.data import abalone_data

REPO = Path(__file__).resolve().parents[1]
BUILD_STAGES = ("Preprocess", "Train", "Evaluate")
STAGE_JOBS = {"Preprocess": PROCESSING, "Train": TRAINING, "Evaluate": PROCESSING}
JOB_TIMES = {"Preprocess": ("ProcessingStartTime", "ProcessingEndTime"), "Train": ("TrainingStartTime", "TrainingEndTime"),
             "Evaluate": ("ProcessingStartTime", "ProcessingEndTime")}


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
def embedded_aws(state_dir: Path, region: str, keep_state: bool, engine: str = "process") -> Iterator[EmbeddedAws]:
    """The embedded AWS with this run's environment set; with ``keep_state`` its API calls are recorded
    in the state folder and replayed at the next start, so a second run continues the same project."""
    recording = state_dir / "moto-recording.jsonl" if keep_state else None
    with EmbeddedAws(region=region, recording=recording, state_dir=state_dir, engine=engine) as aws, aws.activated():
        yield aws


def stage_script(project: Project, stage: str) -> str:
    """The build-phase commands of the stage's buildspec, plus writing out its exported variables.

    The install phase (``pip install -e .``) is skipped: this virtualenv already has the package.
    """
    spec = buildspecs.buildspec(project, stage)
    commands = list(spec["phases"]["build"]["commands"])
    commands += [f'printf "%s" "${name}" > .exported-{name}' for name in spec["env"].get("exported-variables", [])]
    return "set -eo pipefail\n" + "\n".join(commands)


def job_timing(clients: Clients, stage: str, name: str, finished: float) -> tuple[float | None, float | None]:
    """(job run time, seconds from the job's end to the stage's end) from the job's description."""
    kind = STAGE_JOBS.get(stage)
    description = kind.describe(clients.sagemaker, name) if kind else None
    start_key, end_key = JOB_TIMES[stage] if kind else ("", "")
    if not description or not description.get(start_key) or not description.get(end_key):
        return None, None
    started, ended = description[start_key].timestamp(), description[end_key].timestamp()
    return ended - started, finished - ended


def run_stage(project: Project, stage: str, execution_id: str, overrides: dict[str, str], out: Path,
              clients: Clients, echo: Callable[[str], None]) -> StageRun:
    """Run one stage's buildspec commands in a workspace, as CodeBuild would, logging to ``out/logs``."""
    workspace = out / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    for folder in ("bin", "model_container"):
        link = workspace / folder
        if not link.exists():
            link.symlink_to(REPO / folder)
    env = {**os.environ, **buildspecs.resolve_action_environment(project, stage, execution_id, clients=clients),
           **overrides, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONUNBUFFERED": "1"}
    log_path = out / "logs" / execution_id / f"{stage.lower()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(["bash", "-c", stage_script(project, stage)], cwd=workspace, env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            shown = progress_line(stage, line)
            if shown:
                echo(shown)
        code = process.wait()
    finished = time.time()
    seconds = time.monotonic() - started
    exported = {path.name.removeprefix(".exported-"): path.read_text()
                for path in workspace.glob(".exported-*")}
    for path in workspace.glob(".exported-*"):
        path.unlink()
    job_seconds, overhead = job_timing(clients, stage, job_name(project.model, stage, execution_id), finished)
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
    if event.get("event") in ("status_changed", "progress"):
        secondary = f" ({event['secondary_status']})" if event.get("secondary_status") else ""
        message = f": {event['message']}" if event.get("message") else ""
        return (f"  [{stage}] {event.get('resource')}: {event.get('status')}{secondary}{message} "
                f"at {event.get('elapsed_s')} s")
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
            EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=",".join(row[:8]),
            InferenceId=f"sample-{len(answers):05d}")
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
    """The whole local release; returns the summary (also written to ``out/summary.json``).

    With ``args.survey_rows``, a second round follows: synthetic survey data lands in ``data/incoming/``,
    continuous training merges it into a new dataset version and starts a new release, whose gate also
    requires beating the first release's approved version.
    """
    from mlops_core.sagemaker.endpoints import delete_endpoint

    data = abalone_data(args.data)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    state_dir = Path(args.state).resolve() if args.state else out / "state"
    summary: dict = {"data": str(data), "output_folder": str(out), "threshold": args.threshold, "stages": [],
                     "releases": []}
    started = time.monotonic()
    with embedded_aws(state_dir, args.region, keep_state=bool(args.state), engine=args.engine) as aws:
        clients = Clients()
        project = Project(name=args.project, account_id=clients.account_id(), region=args.region, tls_only=False)
        echo(f"AWS_ENDPOINT_URL={aws.endpoint_url} (moto and the local SageMaker runtime; state in {state_dir})")
        changed = [r for r in bootstrap(project, clients=clients) if r.changed]
        echo(f"bootstrap: {len(changed)} resources created or updated in {time.monotonic() - started:.1f} s")
        upload_dataset(project, data, clients, echo)
        # per-run settings reach the stages as pipeline variables do, leaving the CodeBuild projects alone
        overrides = {"EPOCHS": str(args.epochs), **({"THRESHOLD": str(args.threshold)} if args.threshold else {})}
        endpoint = project.model
        summary["project"] = project.name
        try:
            outcome = release(project, args.execution_id or new_execution_id(), overrides, args, out, clients,
                              summary, echo)
            # the first release must deploy; a retrained one may be rejected for not beating it
            ok = outcome == "deployed" or (outcome == "rejected" and args.approve == "interactive")
            if ok and args.survey_rows:
                outcome = continuous_training_round(project, data, overrides, args, out, clients, summary, echo)
                ok = outcome in ("deployed", "rejected")
            if ok and summary.get("endpoint"):
                summary["predictions"] = call_endpoint(endpoint, sample_rows(data, args.samples), clients)
                summary["data_capture"] = {"requests_sent": len(summary["predictions"]),
                                           "records": count_capture_records(project, endpoint, clients)}
            if ok and summary.get("endpoint") and args.monitor:
                ok = monitor_and_retrain(project, data, aws.endpoint_url, overrides, args, out, clients, summary, echo)
            summary["total_seconds"] = round(time.monotonic() - started, 1)
            return finish(summary, out, echo, ok=ok)
        finally:
            if args.keep_serving and summary.get("endpoint"):
                serve_until_interrupted(aws, endpoint, echo)
            if aws.runtime.read("endpoints", endpoint):
                delete_endpoint(endpoint, clients=clients)


def monitor_and_retrain(project: Project, data: Path, endpoint_url: str, overrides: dict[str, str],
                        args: argparse.Namespace, out: Path, clients: Clients, summary: dict,
                        echo: Callable[[str], None]) -> bool:
    """The monitoring round (workflows.local_monitoring) on the deployed release; when its alarm starts the
    pipeline, that execution runs as a release (deployed, or rejected by the gate for not beating the last)."""
    from workflows.local_monitoring import monitoring_round

    deployed = next(r["execution_id"] for r in reversed(summary["releases"]) if r["outcome"] == "deployed")
    summary["monitoring"] = report = monitoring_round(project, deployed, data, endpoint_url, clients, echo,
                                                      rows=args.monitor_rows)
    if not report["retraining"]:
        return False
    outcome = release(project, report["retraining"], overrides, args, out, clients, summary, echo)
    return outcome in ("deployed", "rejected")


def upload_dataset(project: Project, data: Path, clients: Clients, echo: Callable[[str], None]) -> None:
    """Put the data under ``data/current/`` unless a dataset is already there (a kept project's merged data)."""
    prefix = f"{project.model}/data/current/"
    if clients.s3.list_objects_v2(Bucket=project.bucket, Prefix=prefix).get("KeyCount", 0):
        echo(f"dataset: keeping s3://{project.bucket}/{prefix}")
        return
    clients.s3.upload_file(str(data), project.bucket, f"{prefix}{project.model}.csv")
    echo(f"dataset: {data} -> s3://{project.bucket}/{prefix}{project.model}.csv")


def release(project: Project, execution_id: str, overrides: dict[str, str], args: argparse.Namespace, out: Path,
            clients: Clients, summary: dict, echo: Callable[[str], None]) -> str:
    """One release through the pipeline's stages, its facts added to ``summary``.

    Returns its outcome: "deployed", "rejected" (by the quality gate or a person) or "failed".
    """
    echo(f"release {execution_id} of model {project.model}")
    facts: dict = {"execution_id": execution_id}
    summary["releases"].append(facts)
    facts["outcome"] = run_release_stages(project, execution_id, overrides, args, out, clients, summary, facts, echo)
    echo(f"release {execution_id}: {facts['outcome']}")
    return facts["outcome"]


def run_release_stages(project: Project, execution_id: str, overrides: dict[str, str], args: argparse.Namespace,
                       out: Path, clients: Clients, summary: dict, facts: dict, echo: Callable[[str], None]) -> str:
    from mlops_core.sagemaker.registry import find_version

    gate_file = out / "workspace" / buildspecs.SUMMARY_FILE
    gate_file.unlink(missing_ok=True)
    if args.engine == "container":
        container_build(project, execution_id, args, summary, echo)
    succeeded = all(run_and_record(project, stage, execution_id, overrides, out, clients, summary, echo)
                    for stage in BUILD_STAGES)
    facts["gate"] = gate_file.read_text().strip() if gate_file.exists() else None
    prefix = f"{project.model}/{execution_id}"
    facts["rows"] = read_report(project.bucket, f"{prefix}/preprocess/report/summary.json", clients)
    evaluation = read_report(project.bucket, f"{prefix}/evaluation/evaluation.json", clients)
    facts["rmse"] = evaluation.get("regression_metrics", {}).get("rmse", {}).get("value")
    saved = save_outputs(project.bucket, f"{prefix}/evaluation/", out / "evaluation" / execution_id, clients)
    if saved:
        echo(f"evaluation outputs ({', '.join(sorted(path.name for path in saved))}) in {saved[0].parent}")
    if not succeeded:
        return "rejected" if (facts["gate"] or "").endswith("FAIL") else "failed"
    evaluation_summary = summary["stages"][-1]["exported"].get("EVALUATION_SUMMARY", "")
    approved = approve(evaluation_summary, args.approve == "interactive")
    facts["approval"] = {"summary": evaluation_summary, "approved": approved, "by": args.approve}
    echo(f"approval ({args.approve}): {evaluation_summary} -> {'approved' if approved else 'rejected'}")
    if not approved:
        return "rejected"
    if not run_and_record(project, "Deploy", execution_id, overrides, out, clients, summary, echo):
        return "failed"
    version = find_version(project.model_package_group, execution_id, clients=clients)
    facts["registered_version"] = version and {
        "arn": version["ModelPackageArn"], "version": version.get("ModelPackageVersion"),
        "approval": version.get("ModelApprovalStatus")}
    described = clients.sagemaker.describe_endpoint(EndpointName=project.model)
    summary["endpoint"] = {"name": project.model, "status": described["EndpointStatus"],
                           "config": described["EndpointConfigName"]}
    return "deployed"


def container_build(project: Project, execution_id: str, args: argparse.Namespace, summary: dict,
                    echo: Callable[[str], None]) -> None:
    """The ContainerBuild stage with the local engine: the release's training and inference images from
    model_container/'s Dockerfile, under the tags the jobs and the endpoint name (kept when already built)."""
    from mlops_core.local.images import build_image, default_base, image_size
    from mlops_core.local.runtime import image_exists

    images = release_images(project.image_repository_uri, execution_id)
    base = args.base_image or default_base()
    started = time.monotonic()
    for target, tag in (("train", images.training), ("serve", images.inference)):
        if image_exists(tag):
            echo(f"stage ContainerBuild: {tag} is already built ({image_size(tag) / 1e6:.0f} MB)")
        else:
            echo(f"stage ContainerBuild: building {tag} (target {target}, base {base or 'the Dockerfile default'})")
            built = build_image(REPO / "model_container", tag, target=target, base=base)
            echo(f"stage ContainerBuild: {tag} built in {built.seconds} s, {built.size / 1e6:.0f} MB")
    summary["stages"].append(asdict(StageRun("ContainerBuild", round(time.monotonic() - started, 2), 0, "")))


def continuous_training_round(project: Project, data: Path, overrides: dict[str, str], args: argparse.Namespace,
                              out: Path, clients: Clients, summary: dict, echo: Callable[[str], None]) -> str:
    """New survey data -> continuous training (validate, quarantine, merge) -> a release that must beat the last.

    Returns the new release's outcome ("deployed", "rejected" when it does not beat the approved one, ...).
    """
    from workflows.continuous_training import ingest
    from workflows.synthetic import generate, read_rows, to_csv

    rows = generate(read_rows(data.read_text()), args.survey_rows, seed=len(summary["releases"]))
    bad = "M,0.5,0.4,0.1,not-a-number,0.2,0.1,0.15,9\nX,0.5,0.4,0.1,0.5,0.2,0.1,0.15,9\n"
    key = f"{project.model}/data/incoming/survey-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}.csv"
    clients.s3.put_object(Bucket=project.bucket, Key=key, Body=(to_csv(rows) + bad).encode())
    echo(f"continuous training: {len(rows)} synthetic survey rows and 2 bad rows -> s3://{project.bucket}/{key}")
    started: list[str] = []

    def start_local_release(_pipeline: str, *, clients: Clients, client_request_token: str) -> str:
        started.append(new_execution_id())  # the local stand-in for StartPipelineExecution
        return started[-1]

    report = ingest(project.bucket, project.model, pipeline_name=project.pipeline,
                    start_release=start_local_release, clients=clients)
    summary["continuous_training"] = report.to_dict()
    echo(f"continuous training: dataset version {report.dataset_version} with {report.rows} rows; "
         f"{sum(f['rejected'] for f in report.files)} rows quarantined")
    if not report.release:
        return "rejected"
    return release(project, report.release, overrides, args, out,
                   clients, summary, echo)


def count_capture_records(project: Project, endpoint: str, clients: Clients) -> int:
    from mlops_core.sagemaker.capture import read_capture

    return sum(1 for _ in read_capture(s3_uri(project.bucket, project.model, "data-capture"), endpoint,
                                       clients=clients))


def run_and_record(project: Project, stage: str, execution_id: str, overrides: dict[str, str], out: Path,
                   clients: Clients, summary: dict, echo: Callable[[str], None]) -> bool:
    echo(f"stage {stage}: started")
    result = run_stage(project, stage, execution_id, overrides, out, clients, echo)
    summary["stages"].append(asdict(result))
    overhead = f", overhead after the job {result.overhead_seconds} s" if result.overhead_seconds is not None else ""
    echo(f"stage {stage}: {'succeeded' if result.exit_code == 0 else 'FAILED'} in {result.seconds} s{overhead}"
         + ("" if result.exit_code == 0 else f" (exit {result.exit_code}; log {result.log})"))
    return result.exit_code == 0


def save_outputs(bucket: str, prefix: str, target: Path, clients: Clients) -> list[Path]:
    """Download every object under ``prefix`` into ``target``; returns the local files."""
    saved = []
    for item in clients.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        saved.append(target / item["Key"][len(prefix):])
        saved[-1].parent.mkdir(parents=True, exist_ok=True)
        clients.s3.download_file(bucket, item["Key"], str(saved[-1]))
    return saved


def serve_until_interrupted(aws: EmbeddedAws, endpoint: str, echo: Callable[[str], None]) -> None:
    """Keep the endpoint up, with the Age Calculator page and its API in front of it, until Ctrl-C."""
    from mlops_core.local.webapp_server import WebappServer

    record = aws.runtime.read("endpoints", endpoint) or {}
    echo(f"endpoint {endpoint} serving on http://127.0.0.1:{record.get('port')}/invocations "
         f"(or invoke_endpoint with AWS_ENDPOINT_URL={aws.endpoint_url})")
    with WebappServer(endpoint, clients=Clients()) as page:
        echo(f"Age Calculator: open {page.url} (its API: POST {page.url}predict with raw rows as text/csv "
             "or JSON); Ctrl-C to stop")
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
    for stage in summary["stages"]:
        job = f", job {stage['job_seconds']} s, overhead {stage['overhead_seconds']} s" if stage.get("job_seconds") else ""
        lines.append(f"stage {stage['stage']:<10} exit {stage['exit_code']} in {stage['seconds']} s{job}")
    if summary.get("continuous_training"):
        ct = summary["continuous_training"]
        lines.append(f"continuous training: dataset version {ct['dataset_version']} ({ct['rows']} rows), "
                     f"{sum(f['rejected'] for f in ct['files'])} rows quarantined, release {ct['release']}")
    for facts in summary["releases"]:
        lines.append(f"release {facts['execution_id']}: {facts.get('outcome')}")
        if facts.get("rows"):
            lines.append(f"  rows: {json.dumps(facts['rows'])}")
        if facts.get("rmse") is not None:
            lines.append(f"  RMSE {facts['rmse']:.3f}")
        if facts.get("gate"):
            lines.append(f"  gate: {facts['gate']}")
        if facts.get("approval") and facts["approval"]["by"] == "interactive":
            lines.append(f"  approval: {facts['approval']['summary']} -> "
                         f"{'approved' if facts['approval']['approved'] else 'rejected'}")
        if facts.get("registered_version"):
            version = facts["registered_version"]
            lines.append(f"  registered: version {version['version']} ({version['approval']}) {version['arn']}")
    if summary.get("endpoint"):
        lines.append(f"endpoint {summary['endpoint']['name']}: {summary['endpoint']['status']} "
                     f"on config {summary['endpoint']['config']}")
    for item in summary.get("predictions", []):
        lines.append(f"  {item['row']} -> {json.dumps(item['prediction'])} (actual rings {item['actual_rings']})")
    if summary.get("data_capture"):
        capture = summary["data_capture"]
        lines.append(f"data capture: {capture['records']} records for {capture['requests_sent']} requests")
    for item in summary.get("monitoring", {}).get("rounds", []):
        quality = item["model_quality"]
        rmse = f", RMSE {quality['rmse']:.3f} MAE {quality['mae']:.3f}" if "rmse" in quality else ""
        drifts = sorted({v["feature"] for v in item["data_quality"]["violations"]})
        lines.append(f"monitoring {item['round']}: data quality {item['data_quality']['status']}"
                     + (f" ({', '.join(drifts)})" if drifts else "") + f"; model quality {quality['status']}{rmse}")
    if summary.get("monitoring"):
        lines.append(f"monitoring: retraining started by the alarm: {summary['monitoring']['retraining'] or 'none'}")
    if "total_seconds" in summary:
        lines.append(f"total {summary['total_seconds']} s; outputs in {summary['output_folder']}")
    lines.append("RELEASE OK" if summary.get("ok") else "RELEASE FAILED")
    return lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="an abalone data file (else $ABALONE_DATA, else the UCI file shipped with the package)")
    p.add_argument("--out", default=str(REPO / "out" / "demo"), help="output folder (default out/demo)")
    p.add_argument("--state", help="keep AWS and runtime state in this folder between runs; a second run "
                                   "is a new release of the same project")
    p.add_argument("--project", default="abalone", help="project name of the bootstrapped resources (default abalone)")
    p.add_argument("--region", default="us-east-1", help="region of the embedded AWS (default us-east-1)")
    p.add_argument("--epochs", type=int, default=100, help="training epochs (early stopping may end sooner)")
    p.add_argument("--threshold", type=float,
                   help="an absolute maximum RMSE on top of the default gate, which asks a model to beat the "
                        "evaluation's baselines (a linear model, the training mean) and the approved version's limit")
    p.add_argument("--approve", choices=["gate", "interactive"], default="gate",
                   help="who approves a release: the quality gate (default) or you, asked at the terminal")
    p.add_argument("--samples", type=int, default=5, help="rows sent to the endpoint at the end")
    p.add_argument("--execution-id", help="resume this release instead of starting a new one")
    p.add_argument("--keep-serving", action="store_true",
                   help="keep the endpoint up, with the Age Calculator page on 127.0.0.1 in front of it, until Ctrl-C")
    p.add_argument("--engine", choices=["process", "container"], default="process",
                   help="run jobs and endpoints as processes (default, fast) or in the images built from "
                        "model_container/Dockerfile by Podman (bin/container-engine installs it)")
    p.add_argument("--base-image", help="--engine container: the images' base (default: localhost/debian:bookworm "
                                        "when bin/container-engine made it, else the Dockerfile's default)")
    p.add_argument("--monitor", action="store_true",
                   help="after the deploy: baseline, schedule the monitors, send normal then drifted traffic with "
                        "ground truth, report violations and RMSE, and run the retraining the alarm starts")
    p.add_argument("--monitor-rows", type=int, default=300, help="--monitor: requests per traffic round (default 300)")
    p.add_argument("--survey-rows", type=int, default=0,
                   help="then simulate new survey data of this many rows: continuous training and a second "
                        "release that must beat the first")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(level=os.environ.get("LOG_LEVEL", "WARNING"))  # the demo prints its own progress
    if not args.state and not args.execution_id:  # a fresh run starts from a fresh embedded account
        shutil.rmtree(Path(args.out) / "state", ignore_errors=True)
    return 0 if run_release(args)["ok"] else 1


if __name__ == "__main__":
    run(main)
