#!/usr/bin/env bash
# The CUDA wheel: the same package `latefold` with the CUDA kernels, published under its own
# distribution name (latefold-cu13, as faiss-gpu / cupy-cuda12x do) so that it never replaces
# the CPU wheel by accident. Needs nvcc 12.x or 13.x on PATH (or CUDACXX); the CUDA runtime is
# linked statically, so the wheel needs only an NVIDIA driver where it runs.
# Usage: packaging/cuda_wheel.sh [out-dir] (then auditwheel repair as .ci/wheel does).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${1:-$root/dist}")"
major="$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git -C "$root" ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$work")
sed -i "s/^name = \"latefold\"$/name = \"latefold-cu${major}\"/" "$work/pyproject.toml"
grep -q "^name = \"latefold-cu${major}\"$" "$work/pyproject.toml"
python -m pip wheel --no-deps --config-settings=cmake.define.LATEFOLD_CUDA=ON "$work" -w "$out"
