package codec_test

import (
	"fmt"

	"github.com/ppool/ppool/ipc/codec"
)

// A value travels as the msgpack bytes of a task's argument or result.
func Example() {
	b, err := codec.Append(nil, []int{1, 2, 3})
	if err != nil {
		panic(err)
	}
	var back []int
	if err := codec.Decode(b, &back); err != nil {
		panic(err)
	}
	fmt.Printf("% x -> %v\n", b, back)
	// Output: 93 01 02 03 -> [1 2 3]
}
