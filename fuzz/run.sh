#!/usr/bin/env bash
# Builds the libFuzzer harness of the C ABI (fuzz/c_abi_fuzz.cpp) with
# AddressSanitizer + UBSan, replays the regression inputs (fuzz/regressions/),
# then fuzzes for SECONDS (default 60) from the committed corpus
# (fuzz/corpus/c_abi/). Extra arguments go to libFuzzer.
#
#   fuzz/run.sh [SECONDS] [libFuzzer flags...]
#   fuzz/run.sh --build-only     (builds; a later run reuses the build)
#
# Compiler: $CXX or clang++ when it links -fsanitize=fuzzer; otherwise the
# pip wheels of fuzz/requirements.txt, installed into a virtual environment in
# the build directory (fuzz/clang++ says how they fit together). The build
# directory is $FASTLOSS_FUZZ_BUILD (kept, so rebuilds are incremental) or a
# temporary one. New corpus entries and crash inputs are written there, never
# into the repository: copy a crash into fuzz/regressions/ to keep it
# A change to
# how c_abi_fuzz.cpp decodes its bytes changes what old inputs mean: replay
# the regressions after one, and keep a ctypes test per finding.
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=0
if [ "${1:-}" = --build-only ]; then
  build_only=1
  shift
fi
seconds=${1:-60}
shift || true
work=${FASTLOSS_FUZZ_BUILD:-$(mktemp -d)}
mkdir -p "$work"
work=$(cd "$work" && pwd)

cxx=${CXX:-clang++}
probe=$work/probe.cpp
printf 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }\n' >"$probe"
cmake_args=()
if command -v "$cxx" >/dev/null && "$cxx" -fsanitize=fuzzer,address,undefined "$probe" -o "$work/probe" 2>/dev/null; then
  echo "+ fuzz/run.sh: $cxx with its own libFuzzer"
  cmake_args+=(-DCMAKE_CXX_COMPILER="$cxx")
else
  echo "+ fuzz/run.sh: no clang with libFuzzer; the pip wheels of fuzz/requirements.txt"
  if [ ! -x "$work/tools/bin/python" ]; then
    python3 -m venv "$work/tools"
  fi
  "$work/tools/bin/python" -m pip install --quiet --disable-pip-version-check -r fuzz/requirements.txt
  eval "$("$work/tools/bin/python" - <<'PY'
import os, shlex, site, ziglang
packages = site.getsitepackages()[0]
print("export FASTLOSS_FUZZ_ZIG=" + shlex.quote(os.path.join(os.path.dirname(ziglang.__file__), "zig")))
print("export FASTLOSS_FUZZ_RUNTIME=" + shlex.quote(os.path.join(packages, "asan_with_fuzzer.so")))
PY
)"
  # The system's C++ include directories (libstdc++'s headers: the objects
  # link with g++), in the order g++ searches them.
  FASTLOSS_FUZZ_CXX_INCLUDES=$(g++ -x c++ -E -v /dev/null -o /dev/null 2>&1 |
    sed -n '/#include <...> search starts here/,/End of search list/p' | sed '1d;$d' | sed 's/^ *//' | paste -sd:)
  export FASTLOSS_FUZZ_CXX_INCLUDES
  cmake_args+=(-DCMAKE_CXX_COMPILER="$PWD/fuzz/clang++" -DFASTLOSS_FUZZ_MAIN=ON)
fi

# Optimised (libFuzzer's speed) with line tables only, as OSS-Fuzz builds:
# ASan/UBSan reports keep file:line for every frame (inlined ones too), and
# the build is ~10% cheaper than with full debug information.
cmake -S . -B "$work/build" -DFASTLOSS_FUZZ=ON -DFASTLOSS_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" "${cmake_args[@]}" >/dev/null
cmake --build "$work/build" --target fastloss_fuzz_c_abi -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" >"$work/build.log" 2>&1 ||
  { tail -50 "$work/build.log"; exit 1; }
fuzzer=$work/build/fastloss_fuzz_c_abi
if [ "$build_only" = 1 ]; then
  echo "+ fuzz/run.sh: built $fuzzer"
  exit 0
fi

# UBSan findings stop the run like ASan's (libFuzzer then keeps the input).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

regressions=(fuzz/regressions/*)
if [ -e "${regressions[0]}" ]; then
  echo "+ fuzz/run.sh: replaying ${#regressions[@]} regression inputs (fuzz/regressions/)"
  "$fuzzer" "${regressions[@]}" >"$work/regressions.log" 2>&1 || { cat "$work/regressions.log"; exit 1; }
fi

echo "+ fuzz/run.sh: fuzzing the C ABI for ${seconds}s (corpus fuzz/corpus/c_abi, new inputs in $work/corpus)"
mkdir -p "$work/corpus"
"$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$@" "$work/corpus" fuzz/corpus/c_abi
