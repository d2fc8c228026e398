#!/usr/bin/env bash
# The whole test suite, as CI runs it: vet, the tests under the race
# detector, then a few seconds of fuzzing per decoder of untrusted bytes.
set -euo pipefail
cd "$(dirname "$0")"

go vet ./...
go test -race -count=1 -timeout 8m ./...

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
