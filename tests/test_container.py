"""The model container: schema, preprocess, evaluate metrics and each mode end to end under $OPT_ML_ROOT."""

from __future__ import annotations

import csv
import json
import random
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from model_container import evaluate, preprocess
from model_container.predictor import Predictor, fit_preparation, prepare
from model_container.schema import COLUMNS, FEATURES, RowError, is_header, parse_row, validate_row

APP = Path(__file__).resolve().parent.parent / "model_container" / "app.py"
GOOD = ["M", "0.455", "0.365", "0.095", "0.514", "0.2245", "0.101", "0.15", "15"]


def synthetic_rows(n: int, seed: int = 0) -> list[list[str]]:
    """Abalone-like labelled rows whose rings depend on the shell weight."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = rng.uniform(0.1, 0.8)
        shell = 0.5 * length ** 2.5 * rng.uniform(0.8, 1.2)
        values = [length, 0.8 * length, 0.25 * length, 1.5 * length ** 2.5, 0.6 * length ** 2.5, 0.3 * length ** 2.5, shell]
        rings = max(1, round(3 + 40 * shell + rng.gauss(0, 1)))
        rows.append([rng.choice("MFI"), *(f"{v:.4f}" for v in values), str(rings)])
    return rows


def run_app(mode: str, root: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(APP), mode], env={**_base_env(), "OPT_ML_ROOT": str(root), **env},
                          capture_output=True, text=True, timeout=120)


def _base_env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("OPT_ML", "SPLIT_", "SM_"))}


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- schema

@pytest.mark.parametrize(("fields", "field", "reason"), [
    (GOOD[:8], None, "expected 9 fields"),
    ([*GOOD, "1"], None, "expected 9 fields"),
    (["X", *GOOD[1:]], "sex", "unknown sex"),
    (["", *GOOD[1:]], "sex", "unknown sex"),
    ([*GOOD[:1], "abc", *GOOD[2:]], "length", "not a number"),
    ([*GOOD[:2], "", *GOOD[3:]], "diameter", "not a number"),
    ([*GOOD[:3], "nan", *GOOD[4:]], "height", "not finite"),
    ([*GOOD[:4], "inf", *GOOD[5:]], "whole_weight", "not finite"),
    ([*GOOD[:5], "-0.1", *GOOD[6:]], "shucked_weight", "negative"),
    ([*GOOD[:8], "ten"], "rings", "not a number"),
    ([*GOOD[:7], True, GOOD[8]], "shell_weight", "not a number"),
])
def test_parse_row_names_the_row_and_field(fields, field, reason):
    with pytest.raises(RowError) as caught:
        parse_row(fields, 7)
    assert (caught.value.line, caught.value.field) == (7, field)
    assert reason in caught.value.reason
    assert validate_row(fields, 7) == str(caught.value)
    assert str(caught.value).startswith(f"row 7{', field ' + field if field else ''}: ")


def test_parse_row_accepts_csv_strings_and_json_numbers():
    assert parse_row(GOOD, 1) == ("M", 0.455, 0.365, 0.095, 0.514, 0.2245, 0.101, 0.15, 15.0)
    assert parse_row(["i", 1, 0.5, 0, 1, 1, 1, " 2.5 "], 1, labelled=False) == ("I", 1.0, 0.5, 0.0, 1.0, 1.0, 1.0, 2.5)
    assert is_header(list(COLUMNS)) and is_header([f" {c.upper()}" for c in FEATURES]) and not is_header(GOOD)


# ---------------------------------------------------------------- preprocess

def test_preprocess_validates_deduplicates_shuffles_and_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("OPT_ML_ROOT", str(tmp_path))
    rows = [",".join(r) for r in synthetic_rows(200)]
    write_lines(tmp_path / "processing/input/data/abalone.data", rows[:150])
    write_lines(tmp_path / "processing/input/data/survey/2026-01.csv",
                [",".join(COLUMNS), *rows[150:], rows[0], "Q,1,1,1,1,1,1,1,1", "M,1,2", "F,1,1,nan,1,1,1,1,9"])
    write_lines(tmp_path / "processing/input/data/.hidden", ["garbage"])

    summary = preprocess.run()

    assert summary | {"input_files": None, "fractions": None, "columns": None} == {
        "input_files": None, "fractions": None, "columns": None, "rows_read": 204, "rejected": 3, "duplicates": 1,
        "rows": 200, "training": 150, "validation": 20, "testing": 30, "seed": 42}
    out = tmp_path / "processing/output"
    assert json.loads((out / "report/summary.json").read_text()) == summary
    rejected = list(csv.DictReader((out / "report/rejected.csv").open()))
    assert [(r["file"], r["line"]) for r in rejected] == [("survey/2026-01.csv", "53"), ("survey/2026-01.csv", "54"),
                                                          ("survey/2026-01.csv", "55")]
    assert "field sex" in rejected[0]["reason"] and "expected 9" in rejected[1]["reason"]
    assert "field height: not finite" in rejected[2]["reason"] and rejected[2]["row"] == "F,1,1,nan,1,1,1,1,9"
    splits = {name: (out / path).read_text().splitlines() for name, path in
              [("training", "training/training.csv"), ("validation", "training/validation.csv"),
               ("testing", "testing/testing.csv")]}
    written = [parse_row(line.split(","), 1) for line in sum(splits.values(), [])]
    assert sorted(written) == sorted(parse_row(row.split(","), 1) for row in rows)  # every valid row exactly once
    assert splits["testing"] != rows[-30:]  # shuffled, not the tail of the file

    monkeypatch.setenv("SPLIT_SEED", "7")
    preprocess.run()
    assert (out / "testing/testing.csv").read_text().splitlines() != splits["testing"]


@pytest.mark.parametrize(("env", "message"), [({}, "no input files"), ({"TEST_FRACTION": "1.5"}, "TEST_FRACTION")])
def test_preprocess_failure_is_written_to_output_failure(tmp_path, env, message):
    result = run_app("preprocess", tmp_path, **env)
    assert result.returncode == 1
    assert message in (tmp_path / "output/failure").read_text()


def test_unknown_mode_fails_with_exit_2(tmp_path):
    result = run_app("fly", tmp_path)
    assert result.returncode == 2 and "unknown mode 'fly'" in (tmp_path / "output/failure").read_text()


# ---------------------------------------------------------------- evaluate / predictor

def test_model_quality_document():
    document = evaluate.model_quality(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 5.0, 4.0]))
    metrics = document["regression_metrics"]
    assert set(metrics) == {"rmse", "mse", "mae", "r2"}
    assert metrics["mse"]["value"] == pytest.approx(1.0) and metrics["rmse"]["value"] == pytest.approx(1.0)
    assert metrics["mae"]["value"] == pytest.approx(0.5)
    assert metrics["r2"]["value"] == pytest.approx(1 - 1.0 / np.var([1, 2, 5, 4]))
    assert all(m["standard_deviation"] > 0 for m in metrics.values())


def test_preparation_is_fitted_on_the_given_rows_only():
    rows = [parse_row(r, 1) for r in synthetic_rows(50)]
    preparation = fit_preparation(rows)
    features = prepare(preparation, rows)
    assert features.shape == (50, 28)
    np.testing.assert_allclose(features[:, 3:].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(features[:, 3:].std(axis=0), 1, atol=1e-4)
    assert features[:, :3].sum(axis=1).tolist() == [1.0] * 50


def test_preparation_clips_measurements_far_outside_training():
    rows = [parse_row(r, 1) for r in synthetic_rows(50)]
    preparation = fit_preparation(rows)
    extremes = [("M", *[1e300] * 7), ("F", *[0.0] * 7), ("I", 1e300, 0.0, 1e300, 0.0, 1e300, 0.0, 1e300)]
    features = prepare(preparation, extremes)
    inside = prepare(preparation, rows)
    assert np.isfinite(features).all()
    assert (features >= inside.min(axis=0) - 1e-5).all() and (features <= inside.max(axis=0) + 1e-5).all()


def test_preparation_of_another_version_is_refused():
    rows = [parse_row(r, 1) for r in synthetic_rows(5)]
    with pytest.raises(ValueError, match="version 1; this container reads version 2: retrain"):
        prepare({k: v for k, v in fit_preparation(rows).items() if k != "version"}, rows)


def test_serving_modules_do_not_import_tensorflow():
    code = ("import sys, model_container.app, model_container.serve, model_container.evaluate; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'sklearn', 'matplotlib'}))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


# ---------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """preprocess -> train (few epochs) -> evaluate through app.py under one $OPT_ML_ROOT."""
    root = tmp_path_factory.mktemp("opt_ml")
    results = run_modes(root, [",".join(r) for r in synthetic_rows(400)],
                        {"epochs": "40", "networks": "2", "patience": "5", "batch_size": "32"})
    return root, results


@pytest.mark.slow
def test_preprocess_train_evaluate_end_to_end(trained):
    root, results = trained
    for mode, result in results.items():
        assert result.returncode == 0, f"{mode}: {result.stderr[-2000:]}"
    assert not (root / "output/failure").exists()
    model = root / "model"
    assert {"network-0.keras", "network-1.keras", "predictor.json", "predictor.npz", "training.json"} <= \
        {p.name for p in model.iterdir()}
    report = json.loads((model / "training.json").read_text())
    assert report["hyperparameters"]["epochs"] == 40 and len(report["epochs"]) == 2
    train_output = results["train"].stdout + results["train"].stderr
    for noise in ("absl::", "oneDNN", "cpu_feature_guard", "rebuild TensorFlow"):  # nothing a user can act on
        assert noise not in train_output
    document = json.loads((root / "processing/output/evaluation/evaluation.json").read_text())
    metrics = document["regression_metrics"]
    assert set(metrics) == {"rmse", "mse", "mae", "r2"}
    baselines = document["baselines"]
    assert 0 < baselines["linear"]["rmse"] < baselines["training_mean"]["rmse"]
    assert document["successor_limit"] == {"rmse": pytest.approx(metrics["rmse"]["value"] + 0.05), "tolerance": 0.05}
    assert metrics["rmse"]["value"] < 2.0 and metrics["r2"]["value"] > 0.5  # learned the synthetic relation
    baselines = document["baselines"]
    assert 0 < baselines["linear"]["rmse"] < baselines["training_mean"]["rmse"]
    assert document["successor_limit"] == {"rmse": pytest.approx(metrics["rmse"]["value"] + 0.05), "tolerance": 0.05}
    predictions = list(csv.DictReader((root / "processing/output/evaluation/predictions.csv").open()))
    assert len(predictions) == 60 and set(predictions[0]) == {"prediction", "label"}
    png = (root / "processing/output/evaluation/prediction-vs-actual.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (500, 500)
    # evaluate scored with the numpy predictor: the same numbers serving computes
    testing = [parse_row(line.split(","), 1) for line in (root / "processing/input/testing/testing.csv").read_text().split()]
    np.testing.assert_allclose(Predictor.load(model).predict(testing)[:5],
                               [float(p["prediction"]) for p in predictions[:5]], atol=1e-4)


@pytest.mark.slow
def test_serve_answers_the_trained_model_over_http(trained):
    from tests.test_container_serve import running_server

    root = trained[0]
    lines = (root / "processing/input/testing/testing.csv").read_text().split()[:3]
    rows = [parse_row(line.split(","), 1) for line in lines]
    body = "\n".join(line.rsplit(",", 1)[0] for line in lines)  # features only: drop rings
    with running_server(root) as server:
        status, content_type, answer = server.invoke(body, "text/csv", "application/json")
    assert (status, content_type) == (200, "application/json")
    predictions = json.loads(answer)["predictions"]
    np.testing.assert_allclose([p["rings"] for p in predictions], Predictor.load(root / "model").predict(rows), atol=1e-3)
    assert [p["age"] - p["rings"] for p in predictions] == pytest.approx([1.5] * 3, abs=1e-3)


@pytest.mark.slow
def test_numpy_predictor_matches_keras(trained):
    import keras

    model_dir = trained[0] / "model"
    predictor = Predictor.load(model_dir)
    rows = [parse_row(r, 1, labelled=True) for r in synthetic_rows(20, seed=3)]
    features = prepare(predictor.spec["preparation"], rows)
    target = predictor.spec["target"]
    keras_mean = np.mean([keras.models.load_model(model_dir / f"network-{i}.keras").predict(features, verbose=0)[:, 0]
                          for i in range(2)], axis=0) * target["std"] + target["mean"]
    np.testing.assert_allclose(predictor.predict(rows), keras_mean, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("hyperparameters", "message"), [({"epochs": "many"}, "epochs='many' is not a int"),
                                                          ({"layers": "3"}, "unknown hyperparameters ['layers']")])
def test_train_failure_is_written_to_output_failure(tmp_path, hyperparameters, message):
    write_lines(tmp_path / "input/config/hyperparameters.json", [json.dumps(hyperparameters)])
    result = run_app("train", tmp_path)
    assert result.returncode == 1
    assert message in (tmp_path / "output/failure").read_text()


def test_evaluate_without_model_fails_with_reason(tmp_path):
    write_lines(tmp_path / "processing/input/testing/testing.csv", [",".join(GOOD)])
    result = run_app("evaluate", tmp_path)
    assert result.returncode == 1
    assert "model.tar.gz is missing" in (tmp_path / "output/failure").read_text()


def run_modes(root: Path, rows: list[str], hyperparameters: dict, *, shuffle_labels: bool = False) -> dict:
    """preprocess -> train -> evaluate through app.py under one $OPT_ML_ROOT, as the jobs chain them; with
    ``shuffle_labels`` the training step gets its labels shuffled (a broken train, real baselines)."""
    write_lines(root / "processing/input/data/abalone.csv", rows)
    results = {"preprocess": run_app("preprocess", root)}
    for name in ("training.csv", "validation.csv"):
        lines = (root / "processing/output/training" / name).read_text().splitlines()
        write_lines(root / "processing/input/training" / name, lines)  # the baselines see the real labels
        if shuffle_labels:
            labels = [line.rsplit(",", 1)[1] for line in lines]
            random.Random(1).shuffle(labels)
            lines = [f"{line.rsplit(',', 1)[0]},{label}" for line, label in zip(lines, labels, strict=True)]
        write_lines(root / "input/data/training" / name, lines)
    write_lines(root / "input/config/hyperparameters.json", [json.dumps(hyperparameters)])
    results["train"] = run_app("train", root)
    (root / "processing/input/model").mkdir(parents=True)
    with tarfile.open(root / "processing/input/model/model.tar.gz", "w:gz") as tar:
        for path in (root / "model").iterdir():
            tar.add(path, arcname=path.name)
    write_lines(root / "processing/input/testing/testing.csv",
                (root / "processing/output/testing/testing.csv").read_text().splitlines())
    results["evaluate"] = run_app("evaluate", root)
    return results


def release_on(root: Path, rows: list[str], hyperparameters: dict, *, shuffle_labels: bool = False) -> dict:
    """``run_modes``, every mode succeeding; the evaluation.json written."""
    for mode, result in run_modes(root, rows, hyperparameters, shuffle_labels=shuffle_labels).items():
        assert result.returncode == 0, f"{mode}: {result.stderr[-2000:]}"
    return json.loads((root / "processing/output/evaluation/evaluation.json").read_text())


@pytest.mark.slow
def test_the_default_gate_passes_the_real_recipe_and_rejects_broken_models(tmp_path):
    """On the real data and the container's own split: the shipped recipe beats both baselines; a model trained
    for a handful of tiny steps, or on shuffled labels, does not."""
    from mlops_core.gate import evaluation_of, judge
    from workflows.data import SHIPPED

    rows = SHIPPED.read_text().splitlines()
    cases = {"real recipe": ({}, False), "too few steps": ({"epochs": 1, "networks": 1, "learning_rate": 1e-5}, False),
             "shuffled labels": ({"networks": 1, "epochs": 30}, True)}
    verdicts = {}
    for name, (hyperparameters, shuffled) in cases.items():
        document = release_on(tmp_path / name.replace(" ", "-"), rows, hyperparameters, shuffle_labels=shuffled)
        verdicts[name] = judge(evaluation_of(f"s3://b/{name}/evaluation.json", document))
    print({name: verdict.summary for name, verdict in verdicts.items()})
    assert verdicts["real recipe"].passed, verdicts["real recipe"].summary
    assert not verdicts["too few steps"].passed, verdicts["too few steps"].summary
    assert not verdicts["shuffled labels"].passed, verdicts["shuffled labels"].summary



@pytest.mark.parametrize("has_data_filter", [True, False], ids=["python-3.11.4+", "debian-bookworm-3.11.2"])
def test_model_archives_are_unpacked_safely_with_or_without_tarfile_filters(tmp_path, monkeypatch, has_data_filter):
    import io

    if not has_data_filter:
        monkeypatch.delattr(tarfile, "data_filter")
    good, evil = tmp_path / "good.tar.gz", tmp_path / "evil.tar.gz"
    for archive, name in ((good, "predictor.json"), (evil, "../outside.json")):
        with tarfile.open(archive, "w:gz") as tar:
            member = tarfile.TarInfo(name)
            member.size = 2
            tar.addfile(member, io.BytesIO(b"{}"))
    (tmp_path / "a").mkdir()
    assert (evaluate.extract_model(good, tmp_path / "a") / "predictor.json").read_text() == "{}"
    (tmp_path / "b").mkdir()
    with pytest.raises(Exception, match="outside"):
        evaluate.extract_model(evil, tmp_path / "b")
    assert not (tmp_path / "outside.json").exists()
