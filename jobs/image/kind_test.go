package image

import (
	"bytes"
	"context"
	"errors"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ppool/ppool/jobs"
)

// runSplit runs a task the way the runner does for a large image: Split in
// the master, each part, then Merge.
func runSplit(t *testing.T, k *jobs.Kind, task jobs.Task) {
	t.Helper()
	parts, err := k.Split(&task)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 2 {
		t.Fatalf("%s was not split (%d parts)", k.Name, len(parts))
	}
	dir := t.TempDir()
	for i := range parts {
		parts[i].Path = filepath.Join(dir, "part"+string(rune('a'+i))+"."+k.PartExt)
		pt := task
		pt.Mode, pt.Part = "part", &parts[i]
		if _, err := k.Run(context.Background(), &pt); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	task.Mode, task.Parts = "merge", parts
	if _, err := k.Merge(context.Background(), &task); err != nil {
		t.Fatal(err)
	}
}

// TestKindsSplitAsWhole: through the kinds' own Split, Run and Merge, a
// filtered image and a Mandelbrot render come out byte-identical whether
// they ran whole or as strips on separate workers, PNG and JPEG alike.
func TestKindsSplitAsWhole(t *testing.T) {
	defer func(p, r int) { splitPixels, stripRows = p, r }(splitPixels, stripRows)
	splitPixels, stripRows = 1000, 37 // strips smaller than the blur's halo too

	dir := t.TempDir()
	src := filepath.Join(dir, "in.png")
	m := Mandelbrot{Width: 160, Height: 150, Center: complex(-0.6, 0.1), Span: 2.5, MaxIter: 64}
	img, err := m.Render(image.Rect(0, 0, m.Width, m.Height))
	if err != nil {
		t.Fatal(err)
	}
	if err := Save(src, img, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind   string
		params map[string]any
		input  bool
	}{
		{"image.blur", map[string]any{"sigma": 3.0, "quality": 90}, true},
		{"image.sharpen", map[string]any{"sigma": 1.5, "amount": 1.0, "threshold": 2, "quality": 90}, true},
		{"image.edges", map[string]any{"quality": 90}, true},
		{"image.grayscale", map[string]any{"quality": 90}, true},
		{"image.mandelbrot", map[string]any{"width": 160, "height": 150, "center_re": -0.6, "center_im": 0.1, "span": 2.5, "max_iter": 64, "quality": 90}, false},
	} {
		for _, ext := range []string{"png", "jpg"} {
			k, _ := jobs.LookupKind(c.kind)
			task := jobs.Task{Job: "t", Kind: c.kind, Name: "x", Params: c.params, Inputs: map[string]jobs.Input{}, Mode: "run"}
			if c.input {
				task.Inputs["image"] = jobs.Input{Path: src}
			}
			task.Output = filepath.Join(dir, c.kind+"-whole."+ext)
			if _, err := k.Run(context.Background(), &task); err != nil {
				t.Fatalf("%s whole: %v", c.kind, err)
			}
			whole := task.Output
			task.Output = filepath.Join(dir, c.kind+"-split."+ext)
			runSplit(t, k, task)
			a, _ := os.ReadFile(whole)
			b, _ := os.ReadFile(task.Output)
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("%s .%s: split output (%d bytes) differs from whole (%d bytes)", c.kind, ext, len(b), len(a))
			}
		}
	}
}

// TestKindsNameBadFiles: every kind that reads an image, in the master
// (Split) and in the worker (Run), says which file is empty or truncated,
// and says so in the same words.
func TestKindsNameBadFiles(t *testing.T) {
	photo, err := os.ReadFile(testdata("photo.png"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := []struct {
		name string
		data []byte
		is   error
		msg  string
	}{
		{"empty.png", nil, ErrEmpty, "empty.png: empty file (0 bytes), not a PNG or JPEG image"},
		{"header.png", photo[:20], ErrTruncated, "header.png: truncated PNG data"},
		{"half.png", photo[:len(photo)/2], ErrTruncated, "half.png: truncated PNG data"},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, err error, path string, is error, msg string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		if !errors.Is(err, is) || !strings.HasPrefix(err.Error(), filepath.Join(dir, msg)) {
			t.Errorf("%s: %q, want %q (%v)", what, err, filepath.Join(dir, msg), is)
		}
	}
	for _, k := range jobs.Kinds() {
		if !strings.HasPrefix(k.Name, "image.") || len(k.Slots) == 0 {
			continue
		}
		params := map[string]any{}
		for _, p := range k.Params {
			params[p.Name] = p.Default
		}
		if k.Name == "image.resize" {
			params["width"] = 10
		}
		for _, f := range files {
			path := filepath.Join(dir, f.name)
			task := jobs.Task{Job: "t", Kind: k.Name, Name: "x", Params: params, Mode: "run",
				Inputs: map[string]jobs.Input{"image": {Path: path}}, Output: filepath.Join(dir, "out.png")}
			if k.Split != nil {
				if _, err := k.Split(&task); err != nil || f.name != "half.png" { // half.png's header is whole
					check(k.Name+" Split "+f.name, err, path, f.is, f.msg)
				}
			}
			_, err := k.Run(context.Background(), &task)
			check(k.Name+" Run "+f.name, err, path, f.is, f.msg)
		}
	}
}

// TestStripLoadsOnlyItsRows: a strip of a split filter task on a tall PNG
// decodes only its own input rows, so it allocates a small fraction of what
// the whole image takes; splitting saves memory, not only time.
func TestStripLoadsOnlyItsRows(t *testing.T) {
	defer func(p int) { splitPixels = p }(splitPixels)
	splitPixels = 1 << 20
	const w, h = 500, 8000
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i/4%w + i/(4*w)) // opaque: alpha is overwritten below
		if i%4 == 3 {
			img.Pix[i] = 0xff
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "tall.png")
	if err := Save(src, img, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	k, _ := jobs.LookupKind("image.blur")
	task := jobs.Task{Job: "t", Kind: k.Name, Name: "x", Mode: "run", Output: filepath.Join(dir, "out.png"),
		Inputs: map[string]jobs.Input{"image": {Path: src}}, Params: map[string]any{"sigma": 2.0, "quality": 90}}
	parts, err := k.Split(&task)
	if err != nil || len(parts) < 10 {
		t.Fatalf("Split: %d parts, %v", len(parts), err)
	}
	part := parts[len(parts)/2]
	part.Path = filepath.Join(dir, "part.png")
	task.Mode, task.Part = "part", &part
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := k.Run(context.Background(), &task); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	whole := uint64(4 * w * h) // the image as NRGBA alone
	n := after.TotalAlloc - before.TotalAlloc
	if n > whole/2 {
		t.Errorf("a strip of %d rows of a %d×%d image allocated %d bytes; the image alone is %d", part.Row1-part.Row0, w, h, n, whole)
	}
	t.Logf("a strip of %d rows allocated %d bytes; the image alone is %d", part.Row1-part.Row0, n, whole)
	strip, err := Load(part.Path)
	if err != nil {
		t.Fatal(err)
	}
	f := GaussianBlur{Sigma: 2}
	s := Strip{Y0: part.Row0, Y1: part.Row1, Height: h}
	y0, y1 := s.Input(f.Halo())
	want, _ := f.ApplyStrip(Crop(img, image.Rect(0, y0, w, y1)), s)
	if !equalPix(strip, want) {
		t.Error("the strip differs from the same rows of the whole image blurred")
	}
}

// TestKindsHonourJobMemory: a task whose job's memory: limit cannot hold
// what its image needs is refused from the header, naming the file, rather
// than decoded until the worker is killed; with room enough it runs.
func TestKindsHonourJobMemory(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "big.png")
	if err := Save(src, image.NewNRGBA(image.Rect(0, 0, 1000, 1000)), SaveOptions{}); err != nil { // 4 MB decoded
		t.Fatal(err)
	}
	for _, name := range []string{"image.blur", "image.thumbnail", "image.grayscale"} {
		k, _ := jobs.LookupKind(name)
		params := map[string]any{}
		for _, p := range k.Params {
			params[p.Name] = p.Default
		}
		task := jobs.Task{Job: "t", Kind: name, Name: "x", Mode: "run", Params: params, Memory: 4 << 20, // 3 MiB for the image
			Inputs: map[string]jobs.Input{"image": {Path: src}}, Output: filepath.Join(dir, "out.png")}
		_, err := k.Run(context.Background(), &task)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.png") {
			t.Errorf("%s under memory: 4MiB: %v, want ErrTooLarge naming the file", name, err)
		}
		if name != "image.grayscale" {
			continue // one kind run with room enough shows the limit is not all that refuses
		}
		task.Memory = 1 << 30
		if _, err := k.Run(context.Background(), &task); err != nil {
			t.Errorf("%s under memory: 1GiB: %v", name, err)
		}
	}
}
