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
ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0.0), "linear": lambda x: x, "exponential": np.exp}


def fit_preparation(rows: Sequence[tuple]) -> dict:
    """One-hot sex plus log1p and standardisation of the measurements, fitted on ``rows`` only."""
    numeric = np.log1p(_measurements(rows))
    std = numeric.std(axis=0)
    return {"sexes": list(SEXES), "numeric": list(NUMERIC_FEATURES), "transform": "log1p",
            "mean": numeric.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist()}


def prepare(preparation: dict, rows: Sequence[tuple]) -> np.ndarray:
    """The network input for parsed rows (label, if present, ignored): float32 (n, sexes + measurements)."""
    sexes = np.array([row[0] for row in rows], dtype=object).reshape(-1, 1) == np.array(preparation["sexes"])
    numeric = (np.log1p(_measurements(rows)) - preparation["mean"]) / preparation["std"]
    return np.hstack([sexes, numeric]).astype(np.float32)


def labels(rows: Sequence[tuple]) -> np.ndarray:
    """The rings column of labelled rows."""
    return np.array([row[len(NUMERIC_FEATURES) + 1] for row in rows], dtype=np.float64)


def _measurements(rows: Sequence[tuple]) -> np.ndarray:
    width = len(NUMERIC_FEATURES) + 1
    return np.array([row[1:width] for row in rows], dtype=np.float64).reshape(len(rows), width - 1)


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
        """Predicted rings, float64 (n,); non-finite for inputs far outside anything seen in training."""
        features = prepare(self.spec["preparation"], rows)
        with np.errstate(all="ignore"):
            outputs = []
            for network in self.networks:
                x = features
                for kernel, bias, activation in network:
                    x = activation(x @ kernel + bias)
                outputs.append(x[:, 0])
            scaled = np.mean(outputs, axis=0, dtype=np.float64)
            target = self.spec["target"]
            return scaled * target["std"] + target["mean"]
