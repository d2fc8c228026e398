#!/usr/bin/env bash
# The whole test suite, as CI runs it: vet, the tests under the race
# detector, the chaos suite, then a few seconds of fuzzing per decoder of
# untrusted bytes.
set -euo pipefail
cd "$(dirname "$0")"

go vet ./...
go vet -tags chaos ./pool ./jobs
go test -race -count=1 -timeout 8m ./...

# The chaos suite: workers SIGKILLed under load, memory hogs, hangs,
# malformed frames, a jobs run killed 20 times and resumed.
# Its figures (tasks, kills, lost, duplicated, recovery) are printed.
chaoslog=$(mktemp)
trap 'rm -f "$chaoslog"' EXIT
if ! go test -race -count=1 -timeout 4m -tags chaos -run '^TestChaos' -v ./pool ./jobs >"$chaoslog" 2>&1; then
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
fuzz ./jobs/image FuzzLoad 3000
echo "fuzzing: 6 targets, no failures"
