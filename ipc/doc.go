// Package ipc is ppool's wire protocol: how the master and a worker process
// talk over a pair of pipes.
//
// A frame is a 4-byte big-endian payload length followed by one msgpack map.
// Every map has a "t" key naming the message type; the other keys are short
// names listed on [Msg]. Unknown keys are ignored, so either side may add
// fields without a version bump.
//
// Nothing here trusts the bytes it reads. [Reader.ReadFrame] checks the length
// against a limit before allocating, and [Validate] walks every msgpack value
// in the frame, checking each declared array, map, string and binary length
// against the bytes that are actually left, before any decoder sees it. That
// matters because msgpack decoders (vmihailenco/msgpack v5.4.1 among them)
// allocate whatever element count a 5-byte header claims. Once a frame has
// passed Validate, decoding any value inside it allocates at most a small
// multiple of the frame's size.
//
// The package knows nothing of processes: the master side lives in package
// pool and the worker side in package workerproc. docs/protocol.md describes
// the same protocol for authors of workers in other languages.
package ipc
