"""Feature preparation and the numpy forward pass: what serving, evaluate and the benchmarks run.

No TensorFlow here. Training (``training.py``) fits the preparation on the training split, trains the
Keras networks and exports, next to the Keras file, ``predictor.json`` (preparation, target scaling,
layer activations) and ``predictor.npz`` (the dense layers' weights). ``Predictor.load`` reads those two,
so serving applies exactly the preparation training used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model_container.schema import NUMERIC_FEATURES, SEXES

SPEC_FILE = "predictor.json"
WEIGHTS_FILE = "predictor.npz"
ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0.0), "linear": lambda x: x}


PREPARATION_VERSION = 2
EPSILON = 1e-3  # keeps the logs and ratios of zero weights finite


def fit_preparation(rows: Sequence[tuple]) -> dict:
    """Clip bounds, means and standard deviations of the engineered features, fitted on ``rows`` only."""
    features = _engineered(rows)
    std = features.std(axis=0)
    return {"version": PREPARATION_VERSION, "low": features.min(axis=0).tolist(), "high": features.max(axis=0).tolist(),
            "mean": features.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist()}


def prepare(preparation: dict, rows: Sequence[tuple]) -> np.ndarray:
    """The network input for parsed rows (label, if present, ignored): one-hot sex, then the engineered
    features clipped to the range seen in training (a measurement far outside it cannot send the
    prediction anywhere) and standardised. float32 (n, 3 + 25)."""
    if preparation.get("version") != PREPARATION_VERSION:
        raise ValueError(f"the model's feature preparation is version {preparation.get('version', 1)}; this "
                         f"container reads version {PREPARATION_VERSION}: retrain the model with this image")
    features = np.clip(_engineered(rows), preparation["low"], preparation["high"])
    return np.hstack([_one_hot(rows), (features - preparation["mean"]) / preparation["std"]]).astype(np.float32)


def _engineered(rows: Sequence[tuple]) -> np.ndarray:
    """Per row: log1p of the 7 measurements, log of the 4 weights, shucked / viscera / shell weight as
    fractions of the whole weight, log1p of a volume proxy, and the row-wise L2-normalised one-hot sex plus
    measurements (the reference recipe's only input): 25 columns."""
    measurements = _measurements(rows)
    length, diameter, height, whole, shucked, viscera, shell = measurements.T
    raw = np.hstack([_one_hot(rows), measurements])
    with np.errstate(over="ignore"):  # measurements near float max: inf is clipped to the training range
        return np.column_stack([
            np.log1p(measurements), np.log(measurements[:, 3:] + EPSILON),
            np.column_stack([shucked, viscera, shell]) / (whole + EPSILON)[:, None],
            np.log1p(100 * length * diameter * height),
            raw / np.linalg.norm(raw, axis=1, keepdims=True)])


def _one_hot(rows: Sequence[tuple]) -> np.ndarray:
    return (np.array([row[0] for row in rows], dtype=object).reshape(-1, 1) == np.array(SEXES)).astype(np.float64)


def labels(rows: Sequence[tuple]) -> np.ndarray:
    """The rings column of labelled rows."""
    return np.array([row[len(NUMERIC_FEATURES) + 1] for row in rows], dtype=np.float64)


def _measurements(rows: Sequence[tuple]) -> np.ndarray:
    width = len(NUMERIC_FEATURES) + 1
    return np.array([row[1:width] for row in rows], dtype=np.float64).reshape(len(rows), width - 1)


def one_hot_and_measurements(rows: Sequence[tuple]) -> np.ndarray:
    """The raw features: one-hot sex and the seven measurements as they are (for simple baselines)."""
    return np.hstack([_one_hot(rows), _measurements(rows)])


class Predictor:
    """Predicted rings for parsed rows: preparation, then the mean of the networks' dense forward passes."""

    def __init__(self, spec: dict, weights: dict[str, np.ndarray]):
        self.spec, self.weights = spec, weights
        self.networks = [[(weights[f"n{n}_w{i}"], weights[f"n{n}_b{i}"], ACTIVATIONS[activation])
                          for i, activation in enumerate(spec["activations"])]
                         for n in range(spec["networks"])]

    @classmethod
    def load(cls, model_dir: str | Path) -> Predictor:
        model_dir = Path(model_dir)
        spec = json.loads((model_dir / SPEC_FILE).read_text())
        with np.load(model_dir / WEIGHTS_FILE) as weights:
            return cls(spec, dict(weights))

    @classmethod
    def from_networks(cls, spec: dict, networks: Sequence[Sequence[np.ndarray]]) -> Predictor:
        """From per-network alternating kernel/bias arrays (Keras ``get_weights()`` of each network)."""
        return cls({**spec, "networks": len(networks)},
                   {f"n{n}_{'wb'[i % 2]}{i // 2}": np.asarray(array) for n, network in enumerate(networks)
                    for i, array in enumerate(network)})

    def save(self, model_dir: str | Path) -> None:
        model_dir = Path(model_dir)
        (model_dir / SPEC_FILE).write_text(json.dumps(self.spec, indent=1))
        np.savez(model_dir / WEIGHTS_FILE, **self.weights)

    def predict(self, rows: Sequence[tuple]) -> np.ndarray:
        """Predicted rings, float64 (n,); finite for any valid rows, since the features are clipped."""
        features, outputs = prepare(self.spec["preparation"], rows), []
        for network in self.networks:
            x = features
            for kernel, bias, activation in network:
                x = activation(x @ kernel + bias)
            outputs.append(x[:, 0])
        target = self.spec["target"]
        return np.mean(outputs, axis=0, dtype=np.float64) * target["std"] + target["mean"]
