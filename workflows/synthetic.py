"""Synthetic abalone survey data: a light stand-in for the CTGAN generator of the reference.

Per sex, a Gaussian copula: each of the seven measurements and the rings keeps its own observed
(empirical) distribution, and their dependence is the correlation of their normal scores, so the
strong relations between sizes and weights and the shares and shapes of the sexes are kept. Sampled rows are rounded like the survey (lengths 3 decimals, weights 4, whole rings >= 1) and
drawn again until valid: every measurement positive, diameter <= length, each part weight (shucked,
viscera, shell) at most the whole weight. Their sum is not bounded: 3.7 % of the real rows exceed the
whole weight (the shell is weighed dried), and forcing it would skew the small animals.

numpy (the ``container`` extra) is imported on first use. Command line::

    python -m workflows.synthetic --data ../shared/data/abalone.data --rows 500 --seed 7 --out survey.csv
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

from model_container.schema import COLUMNS, SEXES, is_header, validate_row

DECIMALS = (3, 3, 3, 4, 4, 4, 4)  # length, diameter, height, then the four weights


@dataclass(frozen=True)
class SexModel:
    share: float
    sorted_columns: Any  # numpy array (n, 8): each column's observed values, sorted (the marginals)
    correlation: Any  # numpy array (8, 8): correlation of the normal scores (the copula)


@dataclass(frozen=True)
class SurveyModel:
    """The fitted per-sex Gaussian copula; ``sample`` draws valid rows from it."""

    sexes: dict[str, SexModel]

    def sample(self, rows: int, seed: int) -> list[tuple]:
        """``rows`` valid rows ``(sex, 7 measurements, rings)``, the same for the same seed."""
        import numpy as np

        rng = np.random.default_rng(seed)
        names = list(self.sexes)
        counts = rng.multinomial(rows, [self.sexes[s].share for s in names])
        drawn: list[tuple] = []
        for sex, count in zip(names, counts, strict=True):
            drawn += _draw(rng, sex, self.sexes[sex], int(count))
        return [drawn[i] for i in rng.permutation(len(drawn))]


def _draw(rng: Any, sex: str, model: SexModel, count: int) -> list[tuple]:
    """Draw normal scores with the copula's correlation, map them through the marginals, keep valid rows."""
    import numpy as np

    n, width = model.sorted_columns.shape
    cdf = np.vectorize(NormalDist().cdf)
    rows: list[tuple] = []
    while len(rows) < count:
        scores = rng.multivariate_normal(np.zeros(width), model.correlation, size=2 * (count - len(rows)) + 8)
        positions = cdf(scores) * n - 0.5  # the inverse of the plotting positions used in fit
        values = np.column_stack([np.interp(positions[:, i], np.arange(n), model.sorted_columns[:, i])
                                  for i in range(width)])
        measurements = np.column_stack([values[:, i].round(d) for i, d in enumerate(DECIMALS)])
        rings = np.maximum(1, values[:, 7].round())
        length, diameter, whole, parts = (measurements[:, 0], measurements[:, 1], measurements[:, 3],
                                          measurements[:, 4:])
        valid = (measurements > 0).all(axis=1) & (diameter <= length) & (parts <= whole[:, None]).all(axis=1)
        rows += [(sex, *map(float, m), int(r)) for m, r in zip(measurements[valid], rings[valid], strict=True)]
    return rows[:count]


def fit(rows: Iterable[Sequence]) -> SurveyModel:
    """Fit per sex: the empirical marginal of each column and the correlation of their normal scores."""
    import numpy as np

    by_sex: dict[str, list] = {s: [] for s in SEXES}
    for row in rows:
        by_sex[row[0]].append([float(v) for v in row[1:]])
    total = sum(len(v) for v in by_sex.values())
    inverse_cdf = np.vectorize(NormalDist().inv_cdf)
    models = {}
    for sex, values in by_sex.items():
        if not values:
            continue
        if len(values) < 10:
            raise ValueError(f"only {len(values)} rows of sex {sex}: need at least 10 to fit its distribution")
        data = np.array(values)
        ranks = data.argsort(axis=0, kind="stable").argsort(axis=0, kind="stable")
        scores = inverse_cdf((ranks + 0.5) / len(data))
        models[sex] = SexModel(len(values) / total, np.sort(data, axis=0), np.corrcoef(scores, rowvar=False))
    if not models:
        raise ValueError("no rows to fit the synthetic data generator on")
    return SurveyModel(models)


def read_rows(text: str) -> list[tuple]:
    """The valid rows of an abalone CSV text (header optional); invalid rows are skipped."""
    rows = [validate_row(f, n) for n, f in enumerate(csv.reader(io.StringIO(text)), 1) if f and not is_header(f)]
    return [r for r in rows if not isinstance(r, str)]


def generate(source_rows: Iterable[Sequence], rows: int, seed: int) -> list[tuple]:
    """``rows`` synthetic rows resembling ``source_rows`` per sex."""
    return fit(source_rows).sample(rows, seed)


def to_csv(rows: Iterable[Sequence], header: bool = True) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate synthetic abalone survey rows (CSV with header).")
    parser.add_argument("--data", type=Path, required=True, help="the real data to fit on (abalone.data)")
    parser.add_argument("--rows", type=int, default=500, help="rows to generate (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, help="output file (default: standard output)")
    args = parser.parse_args(argv)
    text = to_csv(generate(read_rows(args.data.read_text()), args.rows, args.seed))
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
