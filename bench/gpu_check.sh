#!/usr/bin/env bash
# The GPU check in one call of a few minutes, on a machine with an NVIDIA GPU (compute
# capability 8.0 or later), nvcc, CMake, ninja, pybind11, numpy, pytest, hypothesis and PyTorch
# (the baseline): builds the module with the CUDA kernels, runs the GPU tests against the CPU
# engines (a few of them again under compute-sanitizer), then bench/bench_cuda.py. Logs and
# cuda.json go to $OUT, or the folder given. Usage, from anywhere: bash bench/gpu_check.sh [out-dir]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-${1:-build/gpu_check}}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python="${PYTHON:-python3}"
nvidia-smi 2>&1 | tee "$out/nvidia-smi.txt" | head -15

start=$SECONDS
if ! { cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATEFOLD_BUILD_PYTHON=ON -DLATEFOLD_CUDA=ON \
         -Dpybind11_DIR="$("$python" -c 'import pybind11; print(pybind11.get_cmake_dir())')" &&
       cmake --build build/gpu -j"$(nproc)" --target _core; } >"$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  exit 1
fi
echo "build: $((SECONDS - start)) s"
package=build/gpu/python
rm -rf "$package" && mkdir -p "$package" && cp -r python/latefold "$package/"
rm -f "$package"/latefold/_core*.so && cp build/gpu/_core*.so "$package/latefold/"
export PYTHONPATH="$PWD/$package"
"$python" -c "import latefold as lf; print(lf.cuda_info())" 2>&1 | tee "$out/cuda_info.txt"

start=$SECONDS
timeout 240 "$python" -m pytest -q -p no:cacheprovider -ra tests/test_cuda.py 2>&1 | tee "$out/tests.log" | tail -25
echo "tests: $((SECONDS - start)) s"

start=$SECONDS
subset="(test_maxsim_matches_the_cpu and 33) or (rerank_and_topk and int8) or (fde_on_the_gpu and float16) or pq_search"
for tool in memcheck racecheck; do
  timeout 100 compute-sanitizer --tool "$tool" --error-exitcode 9 \
    "$python" -m pytest -q -p no:cacheprovider -x tests/test_cuda.py -k "$subset" >"$out/$tool.log" 2>&1
  echo "compute-sanitizer $tool: exit $? ($(grep -c 'ERROR SUMMARY: 0 errors' "$out/$tool.log") clean summaries)"
  tail -4 "$out/$tool.log"
done
echo "sanitizers: $((SECONDS - start)) s"

timeout 300 "$python" bench/bench_cuda.py --out "$out/cuda.json" 2>&1 | tee "$out/bench.log" | grep -v '^ ' | tail -40
