"""Model quality and training time of the container's recipe against the reference recipe and GBR.

All three are scored in the same run on the same seeded 20 % holdout of the real data (sklearn
``train_test_split(test_size=0.2, random_state=42)`` of the one-hot rows):
- ours: ``model_container.training.fit`` with its default hyperparameters (early stopping on a seeded
  10 % of the training part; the holdout is never seen) scored by the numpy predictor serving uses;
- reference: row-wise ``normalize`` of the one-hot features, Dense 64-64-1, adam, mse, 200 epochs,
  batch 8 (``--reference-epochs`` shortens it; the output then says so);
- GBR: scikit-learn ``GradientBoostingRegressor(random_state=42)`` on the one-hot features.
Goal: RMSE <= 2.05 with training under 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import normalize

from model_container import training
from model_container.predictor import labels
from model_container.preprocess import load_rows
from model_container.schema import SEXES

REFERENCE_EPOCHS = 200


def one_hot(rows: list[tuple]) -> np.ndarray:
    return np.array([[float(row[0] == sex) for sex in SEXES] + list(row[1:8]) for row in rows])


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.ravel(predicted) - actual) ** 2)))


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def ours(train: list[tuple], test: list[tuple]) -> tuple[float, float]:
    shuffled = list(train)
    random.Random(0).shuffle(shuffled)
    cut = len(shuffled) // 10
    (predictor, _, report), seconds = timed(training.fit, shuffled[cut:], shuffled[:cut], training.hyperparameters({}))
    print(f"  ours: epochs per network {report['epochs']}")
    return rmse(predictor.predict(test), labels(test)), seconds


def reference(train: list[tuple], test: list[tuple], epochs: int) -> tuple[float, float]:
    keras = training._keras()
    keras.utils.set_random_seed(42)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    _, seconds = timed(lambda: model.fit(normalize(one_hot(train)), labels(train), epochs=epochs, batch_size=8,
                                         verbose=0))
    return rmse(model.predict(normalize(one_hot(test)), verbose=0), labels(test)), seconds


def gbr(train: list[tuple], test: list[tuple]) -> tuple[float, float]:
    model = GradientBoostingRegressor(random_state=42)
    _, seconds = timed(model.fit, one_hot(train), labels(train))
    return rmse(model.predict(one_hot(test)), labels(test)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="abalone.data (UCI, no header)")
    parser.add_argument("--reference-epochs", type=int, default=REFERENCE_EPOCHS,
                        help=f"epochs of the reference recipe (default {REFERENCE_EPOCHS}, the real recipe)")
    args = parser.parse_args()
    rows, rejected = load_rows([args.data], args.data.parent)
    train_index, test_index = train_test_split(np.arange(len(rows)), test_size=0.2, random_state=42)
    train, test = [rows[i] for i in train_index], [rows[i] for i in test_index]
    print(f"data: {len(rows)} rows ({len(rejected)} rejected); train {len(train)}, holdout {len(test)}")
    _, import_seconds = timed(training._keras)
    print(f"TensorFlow/Keras import: {import_seconds:.1f} s (not counted in training times)")
    results = {"ours": ours(train, test), "reference": reference(train, test, args.reference_epochs),
               "GBR": gbr(train, test)}
    if args.reference_epochs != REFERENCE_EPOCHS:
        print(f"NOTE: reference shortened to {args.reference_epochs} epochs (the real recipe runs {REFERENCE_EPOCHS})")
    for name, (score, seconds) in results.items():
        print(f"{name:<10} RMSE {score:.3f}   training {seconds:6.1f} s")
    (score, seconds), (ref_score, ref_seconds) = results["ours"], results["reference"]
    print(f"ratios: RMSE ours/reference {score / ref_score:.3f}, ours/GBR {score / results['GBR'][0]:.3f}; "
          f"training time reference/ours {ref_seconds / seconds:.1f}x")
    met = score <= 2.05 and seconds < 30
    print(f"goal: RMSE <= 2.05 and training < 30 s: {'met' if met else 'NOT met'} ({score:.3f}, {seconds:.1f} s)")


if __name__ == "__main__":
    main()
