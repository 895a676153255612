"""Continuous training on moto's S3: validate, quarantine, merge into a version, never ingest twice."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
import json
from pathlib import Path

import pytest

from mlops_core.errors import AwsResourceError
from model_container.schema import validate_row
from workflows.continuous_training import DataLayout, ingest

BUCKET, MODEL, PIPELINE = "abalone-bucket", "abalone", "abalone-pipeline"
LAYOUT = DataLayout(BUCKET, MODEL)
ORIGINAL = """M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15
M,0.35,0.265,0.09,0.2255,0.0995,0.0485,0.07,7
F,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9
M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,10
I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7
"""
SURVEY = """sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,rings
F,0.6,0.48,0.16,1.1,0.45,0.24,0.31,12
I,0.3,0.22,0.07,0.15,0.06,0.03,0.05,5
M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15
X,0.5,0.4,0.1,0.8,0.3,0.2,0.25,9
F,0.5,0.4,-0.1,0.8,0.3,0.2,0.25,9
F,0.5,0.4,0.1,0.8,0.3,0.2,0.25

I,0.3,0.22,0.07,0.15,0.06,0.03,0.05,5.0
M,0.52,0.41,0.13,oops,0.3,0.2,0.25,11
"""
GOOD_NEW = ["F,0.6,0.48,0.16,1.1,0.45,0.24,0.31,12", "I,0.3,0.22,0.07,0.15,0.06,0.03,0.05,5"]


class Starter:
    """Stands in for mlops_core.codepipeline.start_pipeline_execution."""

    def __init__(self, fail: bool = False):
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    def __call__(self, pipeline_name, *, clients, client_request_token):
        assert clients is not None
        if self.fail:
            raise RuntimeError("CodePipeline unavailable")
        self.calls.append((pipeline_name, client_request_token))
        return f"execution-{len(self.calls)}"


@pytest.fixture
def bucket(aws):
    aws.s3.create_bucket(Bucket=BUCKET)
    put(aws, LAYOUT.key("current", "abalone.data"), ORIGINAL)
    put(aws, LAYOUT.key("incoming", "survey-1.csv"), SURVEY)
    return aws


def put(clients, key: str, text: str) -> None:
    clients.s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())


def read(clients, key: str) -> str:
    return clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def keys(clients, *parts: str) -> list[str]:
    listed = clients.s3.list_objects_v2(Bucket=BUCKET, Prefix=LAYOUT.key(*parts) + "/")
    return [o["Key"] for o in listed.get("Contents", [])]


def parsed(text: str) -> list[tuple]:
    return [validate_row(fields, 1) for fields in csv.reader(io.StringIO(text)) if fields]


def test_bad_rows_are_quarantined_good_ones_merged_once(bucket):
    starter = Starter()
    report = ingest(BUCKET, MODEL, pipeline_name=PIPELINE, start_release=starter, clients=bucket)
    assert report.new_version and report.dataset_version == 1 and report.rows == 7
    [entry] = report.files
    assert (entry["added"], entry["duplicates"], entry["rejected"]) == (2, 2, 4)
    version = read(bucket, LAYOUT.version(1))
    rows = parsed(version)
    assert len(rows) == len(set(rows)) == 7  # no duplicates
    assert set(parsed(ORIGINAL)) | set(parsed("\n".join(GOOD_NEW))) == set(rows)  # nothing lost
    assert version.splitlines()[-2:] == GOOD_NEW
    assert keys(bucket, "current") == [LAYOUT.current] and read(bucket, LAYOUT.current) == version
    quarantined = list(csv.DictReader(io.StringIO(read(bucket, entry["quarantine"]))))
    assert [(r["line"], r["reason"]) for r in quarantined] == [
        ("5", "row 5, field sex: unknown sex 'X', expected one of M/F/I"),
        ("6", "row 6, field height: negative: -0.1"),
        ("7", "row 7: expected 9 fields (sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,"
              "shell_weight,rings), got 8"),
        ("10", "row 10, field whole_weight: not a number: 'oops'")]
    assert quarantined[0]["row"] == "X,0.5,0.4,0.1,0.8,0.3,0.2,0.25,9"
    manifest = json.loads(read(bucket, LAYOUT.manifest))
    assert [(f["key"], f["etag"], f["dataset_version"]) for f in manifest["files"]] == [
        (LAYOUT.key("incoming", "survey-1.csv"), entry["etag"], 1)]
    assert starter.calls == [(PIPELINE, "abalone-dataset-v1")] and report.release == "execution-1"
    assert LAYOUT.key(".lock") not in keys(bucket)


def test_second_run_over_the_same_file_merges_nothing(recorder, bucket):
    starter = Starter()
    ingest(BUCKET, MODEL, pipeline_name=PIPELINE, start_release=starter, clients=bucket)
    recorder.clear()
    again = ingest(BUCKET, MODEL, pipeline_name=PIPELINE, start_release=starter, clients=bucket)
    assert (again.files, again.new_version, again.dataset_version, again.release) == ([], False, 1, None)
    assert len(starter.calls) == 1
    assert recorder.mutating == [("s3", "PutObject"), ("s3", "DeleteObject")]  # the lock only
    assert keys(bucket, "versions") == [LAYOUT.version(1)]


def test_a_file_replaced_with_new_content_is_ingested_again(bucket):
    ingest(BUCKET, MODEL, clients=bucket)
    put(bucket, LAYOUT.key("incoming", "survey-1.csv"), "M,0.7,0.55,0.2,1.5,0.6,0.3,0.4,14\n")
    report = ingest(BUCKET, MODEL, clients=bucket)
    assert report.dataset_version == 2 and report.rows == 8
    assert read(bucket, LAYOUT.current).splitlines()[-1] == "M,0.7,0.55,0.2,1.5,0.6,0.3,0.4,14"


def test_file_of_only_bad_or_known_rows_makes_no_version_and_no_release(bucket):
    put(bucket, LAYOUT.key("incoming", "survey-1.csv"), "Q,1,1,1,1,1,1,1,1\n" + ORIGINAL)
    starter = Starter()
    report = ingest(BUCKET, MODEL, pipeline_name=PIPELINE, start_release=starter, clients=bucket)
    assert (report.new_version, report.dataset_version, starter.calls) == (False, 0, [])
    assert report.files[0]["rejected"] == 1 and report.files[0]["duplicates"] == 5
    assert keys(bucket, "current") == [LAYOUT.key("current", "abalone.data")]


def test_release_that_failed_to_start_is_started_by_the_next_run(bucket):
    with pytest.raises(RuntimeError):
        ingest(BUCKET, MODEL, pipeline_name=PIPELINE, start_release=Starter(fail=True), clients=bucket)
    starter = Starter()
    report = ingest(BUCKET, MODEL, pipeline_name=PIPELINE, start_release=starter, clients=bucket)
    assert report.files == [] and report.release == "execution-1"
    assert starter.calls == [(PIPELINE, "abalone-dataset-v1")]


def test_current_dataset_is_repaired_from_the_manifest(bucket):
    ingest(BUCKET, MODEL, clients=bucket)
    put(bucket, LAYOUT.current, ORIGINAL)  # as if a run stopped before replacing current/
    put(bucket, LAYOUT.key("current", "stray.csv"), ORIGINAL)
    ingest(BUCKET, MODEL, clients=bucket)
    assert keys(bucket, "current") == [LAYOUT.current]
    assert read(bucket, LAYOUT.current) == read(bucket, LAYOUT.version(1))


def test_concurrent_run_is_refused_and_a_stale_lock_taken_over(bucket):
    put(bucket, LAYOUT.key(".lock"), "other run")
    with pytest.raises(AwsResourceError, match="another continuous-training run holds it"):
        ingest(BUCKET, MODEL, clients=bucket)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    assert ingest(BUCKET, MODEL, clients=bucket, now=lambda: later).dataset_version == 1
    assert LAYOUT.key(".lock") not in keys(bucket)


def test_script_merges_without_a_release(bucket, capsys):
    path = Path(__file__).resolve().parents[1] / "bin" / "continuous_training.py"
    spec = importlib.util.spec_from_file_location("continuous_training_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--model-name", MODEL, "--bucket-name", BUCKET, "--pipeline-name", PIPELINE,
                        "--no-release"]) == 0
    out = capsys.readouterr().out  # structlog is not configured here: its events go to stdout too
    report = json.loads(out[out.index("{\n"):])
    assert report["dataset_version"] == 1 and report["release"] is None


def test_a_malformed_file_is_quarantined_whole_and_the_rest_of_the_batch_is_ingested(bucket):
    malformed = 'M,0.5,0.4,0.1,0.8,0.3,0.2,0.25,9\nF,"' + "x" * 200_000 + "\n"  # unterminated quote, huge field
    put(bucket, LAYOUT.key("incoming", "survey-0-broken.csv"), malformed)
    report = ingest(BUCKET, MODEL, clients=bucket)
    broken, good = report.files
    assert broken["key"].endswith("survey-0-broken.csv") and "field larger than field limit" in broken["malformed"]
    assert (broken["added"], broken["quarantine"]) == (0, LAYOUT.quarantine(broken["key"], broken["etag"], "malformed"))
    assert read(bucket, broken["quarantine"]) == malformed  # nothing lost
    assert good["added"] == 2 and report.dataset_version == 1 and report.rows == 7
    assert "M,0.5,0.4,0.1,0.8,0.3,0.2,0.25,9" not in read(bucket, LAYOUT.version(1))  # no row of the broken file
    manifest = json.loads(read(bucket, LAYOUT.manifest))
    assert [(f["key"], f["malformed"] is not None) for f in manifest["files"]] == [
        (broken["key"], True), (good["key"], False)]
    assert ingest(BUCKET, MODEL, clients=bucket).files == []  # recorded: not read again


def test_duplicate_rows_are_kept_beside_the_quarantine(bucket):
    [entry] = ingest(BUCKET, MODEL, clients=bucket).files
    assert entry["duplicates_file"] == LAYOUT.quarantine(entry["key"], entry["etag"], "duplicates.csv")
    kept = list(csv.DictReader(io.StringIO(read(bucket, entry["duplicates_file"]))))
    assert [(r["line"], r["row"]) for r in kept] == [("4", "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15"),
                                                     ("9", "I,0.3,0.22,0.07,0.15,0.06,0.03,0.05,5.0")]


def test_a_run_whose_stale_lock_was_taken_over_leaves_the_new_lock_alone(bucket):
    from workflows.continuous_training import _lock, _Store

    store = _Store(LAYOUT, bucket)
    first = _lock(store, lambda: dt.datetime.now(dt.timezone.utc))
    first.__enter__()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    second = _lock(store, lambda: later)
    second.__enter__()  # takes the first run's lock over as stale
    first.__exit__(None, None, None)  # the first run ends: it must not release the second run's lock
    with pytest.raises(AwsResourceError, match="another continuous-training run holds it"):
        ingest(BUCKET, MODEL, clients=bucket)
    second.__exit__(None, None, None)
    assert LAYOUT.key(".lock") not in keys(bucket)
    assert ingest(BUCKET, MODEL, clients=bucket).dataset_version == 1
