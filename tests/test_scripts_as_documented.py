"""Every script runs the way the README says: after bin/setup, from a fresh shell whose PATH starts with
.venv/bin (what `. .venv/bin/activate` does), from any folder, and answers --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON_SCRIPTS = [*sorted(ROOT.glob("bin/*.py")), ROOT / "examples" / "release.py"]
SHELL_SCRIPTS = [ROOT / "bin" / "demo", ROOT / "bin" / "local-aws"]


def fresh_shell(tmp_path: Path) -> dict[str, str]:
    venv = Path(sys.executable).parent
    return {"PATH": f"{venv}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(tmp_path),
            "VIRTUAL_ENV": str(venv.parent), "LANG": "C.UTF-8"}


@pytest.mark.parametrize("script", PYTHON_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_scripts_answer_help_from_a_fresh_activated_shell(script, tmp_path):
    result = subprocess.run(["python", str(script), "--help"], cwd=tmp_path, env=fresh_shell(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and "ModuleNotFoundError" not in result.stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_scripts_answer_help_without_activation(script, tmp_path):
    env = {"PATH": f"/usr/bin{os.pathsep}/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    result = subprocess.run([str(script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: bin/{script.name}")
