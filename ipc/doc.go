// Package ipc is ppool's wire protocol: how the master and a worker process
// talk over a pair of pipes.
//
// A frame is a 4-byte big-endian payload length followed by one msgpack map.
// Every map has a "t" key naming the message type; the other keys are short
// names listed on [Msg]. Unknown keys are ignored, so either side may add
// fields without a version bump.
//
// Nothing here trusts the bytes it reads. [Reader.ReadFrame] checks the length
// against a limit before allocating. [Decode] reads a frame with reads that
// check every type and length against the bytes actually left, and every
// value it hands out whole (a task's arguments, a result's value, unknown
// keys) is walked first by the same check [Validate] makes: each declared
// array, map, string and binary length against the bytes left. That matters
// because msgpack decoders (vmihailenco/msgpack v5.4.1 among them) allocate
// whatever element count a 5-byte header claims. Once a value has passed
// that check, decoding it allocates at most a small multiple of its size.
//
// The package knows nothing of processes: the master side lives in package
// pool and the worker side in package workerproc. docs/protocol.md describes
// the same protocol for authors of workers in other languages.
package ipc
