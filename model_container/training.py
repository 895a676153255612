"""train: Keras regressors on prepared features, exported for the numpy forward pass.

Reads ``input/data/training/{training,validation}.csv`` and ``input/config/hyperparameters.json``
(SageMaker passes strings; see ``DEFAULTS``). The feature preparation is fitted on the training split
only. Each of ``networks`` dense networks (hidden ``hidden_units``, relu, L2 weight decay ``l2``, one
linear output on the standardised target; adam, mse) trains with early stopping on the validation split
and keeps its best weights (the learning rate halves after ``patience // 3`` epochs without progress);
predictions are their mean. ``model/`` receives ``network-{i}.keras`` (the Keras models) and
``predictor.json`` / ``predictor.npz`` (preparation and weights for serving), plus ``training.json``
(hyperparameters, epochs run, validation RMSE, times).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from model_container import paths
from model_container.predictor import Predictor, fit_preparation, labels, prepare

DEFAULTS: dict[str, object] = {
    "epochs": 300,  # at most; early stopping usually ends far sooner
    "batch_size": 64,
    "learning_rate": 0.003,
    "patience": 30,
    "l2": 0.0001,  # weight decay on the hidden layers' kernels
    "hidden_units": "64,64",
    "networks": 3,
    "seed": 42,
}


def hyperparameters(raw: dict) -> dict:
    """DEFAULTS overridden by ``raw`` (strings are cast to each default's type); unknown names are errors."""
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown hyperparameters {unknown}; known: {sorted(DEFAULTS)}")
    params = {**DEFAULTS}
    for name, value in raw.items():
        try:
            params[name] = type(DEFAULTS[name])(value)
        except ValueError:
            raise ValueError(f"hyperparameter {name}={value!r} is not a {type(DEFAULTS[name]).__name__}") from None
    units = hidden_units(params)
    if min(params["epochs"], params["batch_size"], params["patience"], params["networks"], *units) < 1 \
            or params["learning_rate"] <= 0 or params["l2"] < 0:
        raise ValueError(f"hyperparameters must be positive (l2 may be 0): {params}")
    return params


def hidden_units(params: dict) -> list[int]:
    """The hidden layer widths of ``hidden_units`` ("64,64")."""
    try:
        return [int(u) for u in str(params["hidden_units"]).split(",") if u.strip()]
    except ValueError:
        raise ValueError(f"hyperparameter hidden_units={params['hidden_units']!r} is not like '64,64'") from None


def _keras():
    """keras with TensorFlow quiet and limited to the machine's cores (at most 4 threads)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    threads = min(os.cpu_count() or 1, 4)
    if tf.config.threading.get_intra_op_parallelism_threads() != threads:
        with contextlib.suppress(RuntimeError):  # TensorFlow already initialised: keep its setting
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
    return keras


PROGRESS_EVERY_S = 10.0  # a "progress:" line at most this often (the local runtime shows the last one)


def _progress(keras, member: int, networks: int, total_epochs: int, started: float):
    """A Keras callback printing ``progress: network i/n, epoch e/E, val_loss v, t s`` every PROGRESS_EVERY_S."""
    last = [0.0]

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            now = time.perf_counter()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                loss = (logs or {}).get("val_loss")
                print(f"progress: network {member + 1}/{networks}, epoch {epoch + 1}/{total_epochs}"
                      + (f", val_loss {loss:.4f}" if loss is not None else "") + f", {now - started:.0f} s",
                      flush=True)

    return Progress()


def fit(training: Sequence[tuple], validation: Sequence[tuple], params: dict) -> tuple[Predictor, list, dict]:
    """Train on labelled rows; returns the predictor, the Keras models and a training report."""
    keras = _keras()
    started = time.perf_counter()
    preparation = fit_preparation(training)
    x_train, x_validation = prepare(preparation, training), prepare(preparation, validation)
    y_train = labels(training)
    target = {"mean": float(y_train.mean()), "std": float(y_train.std() or 1.0)}

    def scaled(y):
        return (y - target["mean"]) / target["std"]

    units = hidden_units(params)
    models, epochs = [], []
    for member in range(params["networks"]):
        keras.utils.set_random_seed(params["seed"] + member)
        decay = keras.regularizers.l2(params["l2"]) if params["l2"] else None
        model = keras.Sequential([keras.Input((x_train.shape[1],)),
                                  *(keras.layers.Dense(n, activation="relu", kernel_regularizer=decay) for n in units),
                                  keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]), loss="mse", steps_per_execution=16)
        history = model.fit(x_train, scaled(y_train), validation_data=(x_validation, scaled(labels(validation))),
                            epochs=params["epochs"], batch_size=params["batch_size"], verbose=0,
                            callbacks=[_progress(keras, member, params["networks"], params["epochs"], started),
                                       keras.callbacks.EarlyStopping(patience=params["patience"],
                                                                     restore_best_weights=True),
                                       keras.callbacks.ReduceLROnPlateau(patience=max(params["patience"] // 3, 1),
                                                                         factor=0.5)])
        models.append(model)
        epochs.append(len(history.history["loss"]))
    spec = {"preparation": preparation, "target": target,
            "activations": [*("relu" for _ in units), "linear"]}
    predictor = Predictor.from_networks(spec, [model.get_weights() for model in models])
    residuals = predictor.predict(validation) - labels(validation)
    report = {"hyperparameters": params, "epochs": epochs, "seconds": round(time.perf_counter() - started, 2),
              "training_rows": len(training), "validation_rows": len(validation),
              "validation_rmse": float((residuals ** 2).mean() ** 0.5)}
    return predictor, models, report


def save(model_dir: Path, predictor: Predictor, models: list, report: dict) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    for i, model in enumerate(models):
        model.save(model_dir / f"network-{i}.keras")
    predictor.save(model_dir)
    (model_dir / "training.json").write_text(json.dumps(report, indent=1) + "\n")


def read_rows(path: Path) -> list[tuple]:
    """Labelled rows of a CSV written by preprocess (any row breaking the schema is an error here)."""
    from model_container.preprocess import load_rows

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the training channel must hold preprocess's output")
    rows, rejected = load_rows([path], path.parent)
    if rejected:
        raise ValueError(f"{len(rejected)} invalid rows in {path}, first: {rejected[0][2]}")
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return rows


def run() -> dict:
    """The train mode; returns the training report."""
    config = paths.hyperparameters_file()
    params = hyperparameters(json.loads(config.read_text()) if config.is_file() else {})
    channel = paths.training_channel()
    predictor, models, report = fit(read_rows(channel / "training.csv"), read_rows(channel / "validation.csv"), params)
    save(paths.model_dir(), predictor, models, report)
    print(f"validation_rmse={report['validation_rmse']:.4f}; epochs={report['epochs']}", flush=True)
    return report
