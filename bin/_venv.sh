# Sourced by bin/test and bin/demo: create or reuse .venv and install the package with the given extras.
# Re-installs only when setup.cfg, pyproject.toml or the extras change.

pick_python() {
  for candidate in "${PYTHON:-}" python3.12 python3.11 python3.10 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.10 or newer is needed (set PYTHON=/path/to/python3)" >&2
  return 1
}

ensure_venv() {
  local extras=$1 python stamp
  if [ ! -x .venv/bin/python ]; then
    python=$(pick_python) || return 1
    echo "creating .venv with $python" >&2
    "$python" -m venv .venv
  fi
  stamp=".venv/.installed-$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)-${extras//,/-}"
  if [ ! -f "$stamp" ]; then
    echo "installing mlops-core-aws[$extras] into .venv (first run takes a few minutes)" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
}
