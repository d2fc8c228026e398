package pipeecho

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestServeEchoes(t *testing.T) {
	var in bytes.Buffer
	in.Write(AppendFrame(nil, []byte("0123456789abcdef")))
	in.Write(AppendFrame(nil, nil))
	in.Write(AppendFrame(nil, bytes.Repeat([]byte{7}, MaxFrame)))
	want := bytes.Clone(in.Bytes())
	var out bytes.Buffer
	if err := Serve(&in, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("echoed %d bytes, want the %d sent", out.Len(), len(want))
	}
}

func TestServeRefusesOversizedAndTruncated(t *testing.T) {
	huge := binary.LittleEndian.AppendUint32(nil, MaxFrame+1)
	if err := Serve(bytes.NewReader(huge), new(bytes.Buffer)); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("oversized frame: %v, want a refusal", err)
	}
	cut := AppendFrame(nil, []byte("0123456789abcdef"))[:10]
	if err := Serve(bytes.NewReader(cut), new(bytes.Buffer)); err == nil {
		t.Error("a frame cut short echoed without error")
	}
}
