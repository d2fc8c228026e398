#!/usr/bin/env bash
# The whole test suite, as CI runs it: vet, the tests under the race
# detector, the chaos suite, then a few seconds of fuzzing per decoder of
# untrusted bytes.
#
# ./test.sh --under-load [N] runs it N times in a row (default 3) beside two
# CPU-bound processes, stopping at the first failure: the tests must assert
# behaviour, not how fast a busy machine schedules them.
set -euo pipefail
cd "$(dirname "$0")"

if [[ "${1:-}" == --under-load ]]; then
	runs=${2:-3}
	if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
		echo "usage: $0 [--under-load [N]]" >&2
		exit 2
	fi
	hogs=()
	trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
	trap 'exit 130' INT TERM
	for _ in 1 2; do
		sh -c 'while :; do :; done' &
		hogs+=($!)
	done
	for i in $(seq "$runs"); do
		echo "test.sh: run $i of $runs, beside two CPU hogs"
		"$PWD/$(basename "$0")"
	done
	echo "test.sh: $runs runs in a row passed under load"
	exit 0
fi

go vet ./...
go vet -tags chaos ./pool ./jobs
go test -race -count=1 -timeout 8m ./...
# Allocation counts mean nothing under the race detector (sync.Pool drops
# items at random there): the tests that count them run without it too.
go test -count=1 -run 'TestEncodeReusesBuffers' ./jobs/image/fastpng
# Under a limited address space, which the race detector's shadow memory
# cannot live in: a master out of memory must not exit 2.
go test -count=1 -run 'TestRuntimeOutOfMemoryIsNotExit2' ./internal/cli
# The image kinds without libjpeg-turbo too (PPOOL_JPEG=go: Go's JPEG
# codec, and jpegdc for 1/8 decodes), as on a machine without it.
PPOOL_JPEG=go go test -count=1 ./jobs/image/...

# The chaos suite: workers SIGKILLed under load, memory hogs, hangs,
# malformed frames, a jobs run killed 20 times and resumed.
# Its figures (tasks, kills, lost, duplicated, recovery) are printed.
chaoslog=$(mktemp)
trap 'rm -f "$chaoslog"' EXIT
if ! go test -race -count=1 -timeout 10m -tags chaos -run '^TestChaos' -v ./pool ./jobs >"$chaoslog" 2>&1; then
	cat "$chaoslog"
	exit 1
fi
grep -E '^(--- |ok)|chaos_test.go' "$chaoslog"

# Counts, not durations: a -fuzztime deadline that expires while a fuzz
# worker is busy fails the run with "context deadline exceeded" (a known
# flake of go test's fuzzing), and a count cannot. Each is a few seconds
# here. FUZZ_SCALE multiplies them for a longer session.
fuzz() { # package target execs
	go test -run '^$' -fuzz "^$2\$" -fuzztime "$(( $3 * ${FUZZ_SCALE:-1} ))x" "$1"
}
fuzz ./ipc FuzzReadFrame 40000
fuzz ./ipc FuzzDecodeMessages 40000
fuzz ./jobs FuzzParse 40000
fuzz ./jobs/matrix FuzzReadNPY 10000
fuzz ./jobs/matrix FuzzReadCSV 10000
fuzz ./jobs/matrix FuzzReadShape 10000
fuzz ./jobs/image FuzzLoad 3000
fuzz ./jobs/image FuzzPNGRows 2000
fuzz ./jobs/image FuzzExifOrientation 10000
fuzz ./jobs/image/turbojpeg FuzzDecode 3000
fuzz ./jobs/image/jpegdc FuzzDecode 40000
fuzz ./jobs/image/fastpng FuzzDecode 10000
fuzz ./jobs/image/fastpng FuzzEncodeRoundTrip 2000
fuzz ./dist FuzzDecodeTask 10000
fuzz ./dist FuzzDecodeResult 10000
echo "fuzzing: 15 targets, no failures"

# The matrix kinds under every OpenBLAS kernel this CPU can run (and on
# gonum's pure-Go BLAS): kernels round differently, and the tests promise
# only what holds on each.
scripts/blas-kernels.sh
