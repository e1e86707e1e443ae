# Sourced by scripts/test and scripts/quickstart: make .venv and install the project into it,
# again only when pyproject.toml changes. Needs Python 3.10+ (set PYTHON=/path/to/python to choose).
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "inference_magics needs Python 3.10 or newer; '$PY' is $("$PY" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "Installing inference_magics and its test tools into .venv (first run only; log in .venv/install.log)..." >&2
  if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e ".[test]"; } \
      > .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    echo "Installing into .venv failed; the whole log is .venv/install.log." >&2
    exit 2
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
