"""evaluate: score the test split with the same numpy predictor serving uses (no TensorFlow).

Reads ``processing/input/model/model.tar.gz``, every file under ``processing/input/testing/`` and, for the
baselines, under ``processing/input/training/``; writes ``processing/output/evaluation/evaluation.json`` in
SageMaker's model-quality format (rmse, mse, mae, r2; each value with its bootstrap standard deviation) plus
what the quality gate reads: ``baselines`` (the RMSE on the same test rows of the training mean and of a
least-squares linear model on the raw measurements, numpy only) and ``successor_limit`` (this RMSE plus
the tolerance ``GATE_TOLERANCE``, default 0.05 rings: a later release may be worse by that much), then
``predictions.csv`` (``prediction,label``, usable as a Model Monitor baseline) and ``prediction-vs-actual.png``.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from model_container import paths
from model_container.predictor import Predictor, labels, one_hot_and_measurements
from model_container.preprocess import input_files, load_rows, write_csv

BOOTSTRAP_SAMPLES = 200
DEFAULT_TOLERANCE = 0.05  # rings of RMSE a successor may lose against this model and still pass the gate


def _regression_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics along the last axis (so a 2-D array of bootstrap resamples gives one value per resample)."""
    error = predicted - actual
    mse = (error ** 2).mean(axis=-1)
    variance = actual.var(axis=-1)
    return {"rmse": np.sqrt(mse), "mse": mse, "mae": np.abs(error).mean(axis=-1),
            "r2": 1 - mse / np.where(variance > 0, variance, np.nan)}


def model_quality(predicted: np.ndarray, actual: np.ndarray, seed: int = 0) -> dict:
    """SageMaker's model-quality document; standard deviations from a seeded bootstrap of the rows."""
    resamples = np.random.default_rng(seed).integers(0, len(actual), size=(BOOTSTRAP_SAMPLES, len(actual)))
    values = _regression_metrics(predicted, actual)
    spread = _regression_metrics(predicted[resamples], actual[resamples])
    return {"regression_metrics": {name: {"value": float(values[name]), "standard_deviation": float(np.nanstd(spread[name]))}
                                   for name in values}}


def _rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(((predicted - actual) ** 2).mean()))


def baselines(training: list[tuple], testing: list[tuple]) -> dict:
    """RMSE on ``testing`` of the training mean and of least squares on one-hot sex + the raw measurements."""
    x_train, x_test = (np.hstack([one_hot_and_measurements(rows), np.ones((len(rows), 1))])
                       for rows in (training, testing))
    y_train, y_test = labels(training), labels(testing)
    weights, *_ = np.linalg.lstsq(x_train, y_train, rcond=None)
    return {"training_mean": {"rmse": _rmse(np.full(len(y_test), y_train.mean()), y_test)},
            "linear": {"rmse": _rmse(x_test @ weights, y_test)}}


def _rows(folder: Path, what: str) -> list[tuple]:
    files = input_files(folder) if folder.is_dir() else []
    rows, rejected = load_rows(files, folder)
    if rejected or not rows:
        raise ValueError(f"{what} under {folder}: {len(rows)} valid rows, {len(rejected)} invalid"
                         + (f" (first: {rejected[0][2]})" if rejected else "; expected preprocess's output"))
    return rows


def extract_model(archive: Path, destination: Path) -> Path:
    """Unpack model.tar.gz safely (no absolute paths or links out of ``destination``)."""
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} is missing: give the processing job the training job's model.tar.gz")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+
            tar.extractall(destination, filter="data")
        else:  # e.g. Debian bookworm's 3.11.2: the same refusals by hand
            for member in tar.getmembers():
                target = (destination / member.name).resolve()
                if not (member.isfile() or member.isdir()) or not target.is_relative_to(destination.resolve()):
                    raise ValueError(f"{archive}: refusing {member.name!r} (not a plain file inside the model folder)")
            tar.extractall(destination)  # noqa: S202 - every member was checked above
    return destination


def plot(predicted: np.ndarray, actual: np.ndarray, rmse: float, path: Path) -> None:
    """A predicted-vs-actual scatter with the identity line, as PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(5, 5), dpi=100)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes.scatter(actual, predicted, s=6, alpha=0.4)
    axes.plot([low, high], [low, high], color="black", linewidth=1)
    axes.set(xlabel="actual rings", ylabel="predicted rings", title=f"{len(actual)} test rows, RMSE {rmse:.3f}")
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)


def run() -> dict:
    """The evaluate mode; returns the evaluation document it writes."""
    rows = _rows(paths.processing_input("testing"), "test data")
    with tempfile.TemporaryDirectory() as tmp:
        predictor = Predictor.load(extract_model(paths.processing_input("model", "model.tar.gz"), Path(tmp)))
    training = _rows(paths.processing_input("training"), "training data (for the baselines)")
    predicted, actual = predictor.predict(rows), labels(rows)
    document = model_quality(predicted, actual)
    tolerance = float(os.environ.get("GATE_TOLERANCE") or DEFAULT_TOLERANCE)
    document["baselines"] = baselines(training, rows)
    document["successor_limit"] = {"rmse": document["regression_metrics"]["rmse"]["value"] + tolerance,
                                   "tolerance": tolerance}
    output = paths.processing_output("evaluation")
    write_csv(output / "predictions.csv", zip(np.round(predicted, 4).tolist(), actual.tolist(), strict=True),
              header=("prediction", "label"))
    (output / "evaluation.json").write_text(json.dumps(document, indent=1) + "\n")
    rmse = document["regression_metrics"]["rmse"]["value"]
    plot(predicted, actual, rmse, output / "prediction-vs-actual.png")
    print(f"rmse={rmse:.4f} on {len(rows)} rows; baselines: linear {document['baselines']['linear']['rmse']:.4f}, "
          f"training mean {document['baselines']['training_mean']['rmse']:.4f}", flush=True)
    return document
