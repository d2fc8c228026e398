#!/usr/bin/env bash
# The matrix kinds' tests under every OpenBLAS kernel this CPU can run:
# once with the kernel OpenBLAS picks itself (OPENBLAS_CORETYPE unset, even
# if the environment sets it), once per kernel forced with
# OPENBLAS_CORETYPE (Haswell and Zen where /proc/cpuinfo lists avx2,
# SkylakeX and Cooperlake where it lists avx512f), and once on gonum's
# pure-Go BLAS. Kernels round differently; the tests must hold on each.
# Arguments are passed to go test (e.g. -race).
#
# Usage: scripts/blas-kernels.sh [go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(./jobs ./jobs/matrix/...)
goflags=("$@")
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has_flag() { [[ " ${flags#*:} " == *" $1 "* ]]; }
forced=()
if has_flag avx2; then forced+=(Haswell Zen); fi
if has_flag avx512f; then forced+=(SkylakeX Cooperlake); fi

# core prints the kernel OpenBLAS runs under the environment given as
# arguments (as TestLoad logs it), or nothing if OpenBLAS is not installed.
core() {
	local out
	if ! out=$(env "$@" go test -count=1 -run '^TestLoad$' -v ./jobs/matrix/openblas 2>&1); then
		echo "$out" >&2
		echo "blas kernels: loading OpenBLAS with $* failed" >&2
		return 1
	fi
	sed -n 's/.*, core \([^,]*\), threads.*/\1/p' <<<"$out"
}

ran=()
# run NAME ENV...: the tests with the environment changed by env's ENV.
run() {
	local name=$1
	shift
	echo "== $name"
	if ! env "$@" go test -count=1 "${goflags[@]}" "${packages[@]}"; then
		echo "blas kernels: the tests failed on $name" >&2
		exit 1
	fi
	ran+=("$name")
}

summary() {
	local list=${ran[0]} name
	for name in "${ran[@]:1}"; do list+=", $name"; done
	echo "blas kernels: all passed on $list"
}

default=$(core -u OPENBLAS_CORETYPE -u PPOOL_BLAS)
if [ -z "$default" ]; then
	echo "OpenBLAS is not installed: gonum's BLAS only"
	run gonum -u OPENBLAS_CORETYPE PPOOL_BLAS=gonum
	summary
	exit 0
fi
run "default ($default)" -u OPENBLAS_CORETYPE -u PPOOL_BLAS
for kernel in "${forced[@]}"; do
	# OpenBLAS falls back to another kernel when the CPU lacks one it
	# needs (Cooperlake needs avx512_bf16): say which one ran.
	actual=$(core OPENBLAS_CORETYPE="$kernel" PPOOL_BLAS=openblas)
	name=$kernel
	if [ "$actual" != "$kernel" ]; then
		name="$kernel (OpenBLAS ran ${actual:-nothing})"
	fi
	run "$name" OPENBLAS_CORETYPE="$kernel" PPOOL_BLAS=openblas
done
run gonum -u OPENBLAS_CORETYPE PPOOL_BLAS=gonum
summary
