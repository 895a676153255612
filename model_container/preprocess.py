"""preprocess: validate, de-duplicate, shuffle (seeded) and split the raw abalone CSV files.

Reads every file under ``processing/input/data/`` (recursively, hidden files skipped; the original data
plus any new survey files; a first line naming the columns is a header). Rows that break the schema go
to ``processing/output/report/rejected.csv`` with the reason, never dropped silently. Exact duplicate
rows are kept once. The rows are shuffled with a fixed seed and split into training / validation /
testing (default 75 / 10 / 15 %): ``processing/output/training/{training,validation}.csv`` and
``processing/output/testing/testing.csv``, written without a header in the input's column order.
``processing/output/report/summary.json`` holds the counts. Settings (environment): ``SPLIT_SEED``
(default 42), ``VALIDATION_FRACTION`` (0.10), ``TEST_FRACTION`` (0.15).
Standard library only.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections.abc import Iterable
from pathlib import Path

from model_container import paths
from model_container.schema import COLUMNS, is_header, validate_row

MIN_ROWS = 10


def input_files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, in a stable order."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def load_rows(files: Iterable[Path], base: Path) -> tuple[list[tuple], list[list]]:
    """Valid labelled rows of all files, and the rejected ones as ``[file, line, reason, raw row]``."""
    rows, rejected = [], []
    for path in files:
        name = str(path.relative_to(base))
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for line, fields in enumerate(csv.reader(handle), start=1):
                if not fields or (line == 1 and is_header(fields)):
                    continue
                result = validate_row(fields, line)
                if isinstance(result, str):
                    rejected.append([name, line, result, ",".join(fields)])
                else:
                    rows.append(result)
    return rows, rejected


def split(rows: list[tuple], seed: int, validation_fraction: float, test_fraction: float) -> dict[str, list]:
    """Seeded shuffle, then testing / validation / training slices (training gets the rounding rest)."""
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    n_test, n_validation = round(len(rows) * test_fraction), round(len(rows) * validation_fraction)
    return {"testing": shuffled[:n_test], "validation": shuffled[n_test:n_test + n_validation],
            "training": shuffled[n_test + n_validation:]}


def write_csv(path: Path, rows: Iterable[Iterable], header: Iterable[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows([_text(value) for value in row] for row in rows)


def _text(value: object) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _fraction(name: str, default: float) -> float:
    value = float(os.environ.get(name) or default)
    if not 0 < value < 1:
        raise ValueError(f"{name}={value} must be between 0 and 1 (exclusive)")
    return value


def run() -> dict:
    """The preprocess mode; returns the summary it writes."""
    seed = int(os.environ.get("SPLIT_SEED") or 42)
    validation_fraction, test_fraction = _fraction("VALIDATION_FRACTION", 0.10), _fraction("TEST_FRACTION", 0.15)
    if validation_fraction + test_fraction >= 0.9:
        raise ValueError(f"VALIDATION_FRACTION + TEST_FRACTION = {validation_fraction + test_fraction} "
                         "leaves too little training data; keep the sum below 0.9")
    folder = paths.processing_input("data")
    files = input_files(folder) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no input files under {folder}: give the processing job an input "
                                "with the raw CSV files at processing/input/data")
    rows, rejected = load_rows(files, folder)
    unique = list(dict.fromkeys(rows))
    if len(unique) < MIN_ROWS:
        raise ValueError(f"only {len(unique)} valid distinct rows in {len(files)} files under {folder} "
                         f"({len(rejected)} rejected, see the report); need at least {MIN_ROWS}")
    parts = split(unique, seed, validation_fraction, test_fraction)
    write_csv(paths.processing_output("training", "training.csv"), parts["training"])
    write_csv(paths.processing_output("training", "validation.csv"), parts["validation"])
    write_csv(paths.processing_output("testing", "testing.csv"), parts["testing"])
    write_csv(paths.processing_output("report", "rejected.csv"), rejected, header=("file", "line", "reason", "row"))
    summary = {"input_files": [str(f.relative_to(folder)) for f in files], "rows_read": len(rows) + len(rejected),
               "rejected": len(rejected), "duplicates": len(rows) - len(unique), "rows": len(unique),
               **{name: len(part) for name, part in parts.items()}, "seed": seed,
               "fractions": {"validation": validation_fraction, "testing": test_fraction}, "columns": list(COLUMNS)}
    paths.processing_output("report", "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
