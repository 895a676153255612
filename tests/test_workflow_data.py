import pytest

from mlops_core.errors import ConfigError
from workflows.data import DATA_ENV, abalone_data

ROWS = b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\n"


def test_explicit_path_wins(tmp_path, monkeypatch):
    data = tmp_path / "mine.data"
    data.write_bytes(ROWS)
    monkeypatch.setenv(DATA_ENV, "/nonexistent")
    assert abalone_data(data) == data


def test_environment_variable_and_missing_file(tmp_path, monkeypatch):
    data = tmp_path / "env.data"
    data.write_bytes(ROWS)
    monkeypatch.setenv(DATA_ENV, str(data))
    assert abalone_data() == data
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "missing.data"))
    with pytest.raises(ConfigError, match="missing.data is not a file"):
        abalone_data()


def test_without_a_path_the_shipped_uci_file_is_used(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    shipped = abalone_data()
    rows = shipped.read_text().splitlines()
    assert len(rows) == 4177 and rows[0] == "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15"
    assert all(len(row.split(",")) == 9 for row in rows)
