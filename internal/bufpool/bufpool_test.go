package bufpool

import "testing"

func TestReuse(t *testing.T) {
	var p Pool
	b := p.Get(100)
	if len(b) != 0 || cap(b) < 100 {
		t.Fatalf("Get(100): len %d cap %d", len(b), cap(b))
	}
	b = append(b, "kept"...)
	p.Put(b)
	// sync.Pool may drop what it holds at any time (and does, at random,
	// under the race detector): a smaller request gets the same buffer
	// only when it was kept, and a larger one never.
	if c := p.Get(10); cap(c) >= 100 && string(c[:4]) != "kept" {
		t.Errorf("a reused buffer lost its contents: %q", c[:4])
	}
	p.Put(make([]byte, 10))
	if c := p.Get(1000); cap(c) < 1000 {
		t.Errorf("Get(1000) gave capacity %d", cap(c))
	}
}

func TestTooLargeNotKept(t *testing.T) {
	var p Pool
	p.Put(make([]byte, 0, Max+1))
	if c := p.Get(1); cap(c) > Max {
		t.Errorf("a buffer over Max was kept")
	}
}
