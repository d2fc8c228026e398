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

fuzz() { # package target
	go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZTIME:-4s}" "$1"
}
fuzz ./ipc FuzzReadFrame
fuzz ./ipc FuzzDecodeMessages
fuzz ./jobs FuzzParse
fuzz ./jobs/matrix FuzzReadNPY
fuzz ./jobs/matrix FuzzReadCSV
fuzz ./jobs/image FuzzLoad
echo "fuzzing: 6 targets, no failures"
