"""The synthetic survey generator: valid rows (by the container's own schema), per-sex means kept."""

from __future__ import annotations

import csv
import io
import random

import pytest

from model_container.schema import COLUMNS, validate_row
from workflows.synthetic import fit, generate, main, read_rows, to_csv

GROWTH = {"M": (0.56, 1.0), "F": (0.58, 1.05), "I": (0.43, 0.6)}  # mean length, weight scale per sex


def original(rows_per_sex: int = 200, seed: int = 3) -> list[tuple]:
    """Small abalone-like data made here (allometric sizes and weights, noisy), not by the generator."""
    rng = random.Random(seed)
    rows = []
    for sex, (length_mean, scale) in GROWTH.items():
        for _ in range(rows_per_sex):
            length = max(0.1, rng.gauss(length_mean, 0.1))
            whole = scale * (length / length_mean) ** 3 * rng.lognormvariate(0, 0.15)
            rows.append((sex, round(length, 3), round(length * rng.uniform(0.75, 0.82), 3),
                         round(length * rng.uniform(0.22, 0.32), 3), round(whole, 4),
                         round(whole * rng.uniform(0.35, 0.5), 4), round(whole * rng.uniform(0.18, 0.25), 4),
                         round(whole * rng.uniform(0.25, 0.33), 4), max(1, round(rng.gauss(10, 2) * length / 0.5))))
    return rows


def per_sex_means(rows) -> dict[str, list[float]]:
    means = {}
    for sex in GROWTH:
        values = [r[1:] for r in rows if r[0] == sex]
        means[sex] = [sum(column) / len(values) for column in zip(*values, strict=True)]
    return means


def assert_means_close(synthetic, source, tolerance=0.10):
    want, got = per_sex_means(source), per_sex_means(synthetic)
    for sex in GROWTH:
        for name, w, g in zip(COLUMNS[1:], want[sex], got[sex], strict=True):
            assert abs(g - w) <= tolerance * w, f"{sex} {name}: {g:.4f} vs {w:.4f}"


def test_rows_pass_the_container_schema_and_are_consistent():
    rows = generate(original(), 1500, seed=1)
    assert len(rows) == 1500
    text = to_csv(rows)
    reader = csv.reader(io.StringIO(text))
    assert tuple(next(reader)) == COLUMNS
    for number, fields in enumerate(reader, start=2):
        parsed = validate_row(fields, number)
        assert not isinstance(parsed, str), parsed
        sex, length, diameter, height, whole, shucked, viscera, shell, rings = parsed
        assert min(parsed[1:]) > 0 and diameter <= length
        assert max(shucked, viscera, shell) <= whole
        assert fields[-1] == str(int(rings)) and rings >= 1


def test_per_sex_means_within_ten_percent_of_the_original():
    source = original()
    synthetic = generate(source, 3000, seed=2)
    assert {r[0] for r in synthetic} == set(GROWTH)
    assert_means_close(synthetic, source)


def test_same_seed_same_rows_other_seed_other_rows():
    model = fit(original())
    assert model.sample(50, seed=5) == model.sample(50, seed=5)
    assert model.sample(50, seed=5) != model.sample(50, seed=6)


def test_too_few_rows_of_a_sex_is_refused():
    with pytest.raises(ValueError, match="only 3 rows of sex I"):
        fit([r for r in original() if r[0] != "I"] + original(3)[-3:])


def test_command_line_writes_a_survey_file(tmp_path):
    data = tmp_path / "abalone.data"
    data.write_text(to_csv(original(), header=False))
    out = tmp_path / "survey.csv"
    assert main(["--data", str(data), "--rows", "40", "--seed", "9", "--out", str(out)]) == 0
    rows = read_rows(out.read_text())
    assert len(rows) == 40 and out.read_text().startswith(",".join(COLUMNS))


def test_per_sex_means_on_the_real_data():
    from workflows.data import SHIPPED

    source = read_rows(SHIPPED.read_text())
    assert len(source) > 4000
    assert_means_close(generate(source, 4000, seed=0), source)
