package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ppool/ppool/jobs"
)

// BenchmarkThumbnailFile: the image.thumbnail kind end to end in one
// process, as a worker runs it: read and hash a 6 MP JPEG file, decode,
// resize to fit 256×256, encode and write the JPEG. With
// PPOOL_BENCH_PHOTOS naming a folder of JPEGs, those files instead.
//
//	go test -run '^$' -bench ThumbnailFile -benchmem ./jobs/image/
func BenchmarkThumbnailFile(b *testing.B) {
	dir := b.TempDir()
	var files []string
	if d := os.Getenv("PPOOL_BENCH_PHOTOS"); d != "" {
		files, _ = filepath.Glob(filepath.Join(d, "*.jpg"))
	}
	if len(files) == 0 {
		f, err := os.Create(filepath.Join(dir, "photo.jpg"))
		if err != nil {
			b.Fatal(err)
		}
		if err := Encode(f, bigPhoto(), JPEG, SaveOptions{Quality: 90}); err != nil {
			b.Fatal(err)
		}
		f.Close()
		files = []string{f.Name()}
	}
	k, _ := jobs.LookupKind("image.thumbnail")
	i := 0
	for b.Loop() {
		src := files[i%len(files)]
		task := jobs.Task{Job: "t", Kind: k.Name, Name: fmt.Sprint(i), Mode: "run", Output: filepath.Join(dir, fmt.Sprint("thumb", i%8, ".jpg")),
			Params: map[string]any{"max_width": 256, "max_height": 256, "quality": 90}, Inputs: map[string]jobs.Input{"image": {Path: src}}}
		if _, err := k.Run(context.Background(), &task); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
