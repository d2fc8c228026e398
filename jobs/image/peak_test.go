package image

import (
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ppool/ppool/internal/proctest"
	"github.com/ppool/ppool/jobs"
	"github.com/ppool/ppool/jobs/image/turbojpeg"
)

// peakChildEnv makes the test binary, started by TestPeakMemory, run one
// task and report its memory instead of testing: "KIND INPUT OUTPUT".
const peakChildEnv = "PPOOL_IMAGE_PEAK_CHILD"

// runPeakChild runs one task as a worker would and prints its resident
// memory before (VmRSS) and at its peak (VmHWM).
func runPeakChild(spec string) {
	f := strings.Fields(spec)
	turbojpeg.Available() // the library mapped, as in a worker that served a task
	before, err := proctest.Status("VmRSS")
	if err != nil {
		fmt.Println("ERROR", err)
		return
	}
	k, _ := jobs.LookupKind(f[0])
	params := map[string]any{"max_width": 256, "max_height": 256, "sigma": 2.0, "quality": 90, "compression": 6}
	task := jobs.Task{Job: "t", Kind: f[0], Name: "x", Mode: "run", Output: f[2], Params: params,
		Inputs: map[string]jobs.Input{"image": {Path: f[1]}}}
	if _, err := k.Run(context.Background(), &task); err != nil {
		fmt.Println("ERROR", err)
		return
	}
	peak, err := proctest.Status("VmHWM")
	if err != nil {
		fmt.Println("ERROR", err)
		return
	}
	fmt.Println("PEAK", before, peak)
}

// bigPhoto is a cheap 3000×2000 photo-like image: gradients, edges and
// noise, so that it compresses as a photo does.
func bigPhoto() *image.NRGBA {
	const w, h = 3000, 2000
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	seed := uint32(2463534242)
	for y := range h {
		row := pixRow(img, y)
		for x := range w {
			seed ^= seed << 13
			seed ^= seed >> 17
			seed ^= seed << 5
			n := int(seed&15) - 8
			edge := 0
			if (x/150+y/100)%2 == 0 {
				edge = 40
			}
			row[4*x] = uint8(min(255, max(0, 40+x*150/w+edge+n)))
			row[4*x+1] = uint8(min(255, max(0, 60+y*120/h+n)))
			row[4*x+2] = uint8(min(255, max(0, 200-(x+y)*100/(w+h)-edge+n)))
			row[4*x+3] = 255
		}
	}
	return img
}

// TestPeakMemory: a worker thumbnailing a 6-megapixel JPEG or blurring a
// 6-megapixel PNG grows by at most twice the decoded image (3000×2000×4
// bytes) over its resident size before the task. Each task runs in a
// fresh child process, whose peak resident size (VmHWM) is the measure.
func TestPeakMemory(t *testing.T) {
	if spec := os.Getenv(peakChildEnv); spec != "" {
		runPeakChild(spec)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory inflates the resident size")
	}
	dir := t.TempDir()
	img := bigPhoto()
	decoded := int64(4 * img.Rect.Dx() * img.Rect.Dy())
	jpg, png := filepath.Join(dir, "in.jpg"), filepath.Join(dir, "in.png")
	if err := Save(jpg, img, SaveOptions{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	if err := Save(png, img, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	img = nil
	for _, c := range []struct{ kind, in, out string }{
		{"image.thumbnail", jpg, "thumb.jpg"},
		{"image.blur", png, "blur.png"},
		{"image.blur", jpg, "blur.jpg"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPeakMemory$", "-test.count=1")
		cmd.Env = append(os.Environ(), peakChildEnv+"="+c.kind+" "+c.in+" "+filepath.Join(dir, c.out))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.kind, err, out)
		}
		var before, peak int64
		line := string(out)
		if i := strings.Index(line, "PEAK "); i >= 0 {
			fmt.Sscan(line[i+5:], &before, &peak)
		}
		if peak == 0 {
			t.Fatalf("%s of %s: no figures from the child:\n%s", c.kind, c.in, out)
		}
		grew := peak - before
		t.Logf("%s of %s: resident %.1f MiB before, %.1f MiB at peak: grew %.1f MiB, %.2f× the %.1f MiB decoded image",
			c.kind, filepath.Base(c.in), float64(before)/(1<<20), float64(peak)/(1<<20), float64(grew)/(1<<20), float64(grew)/float64(decoded), float64(decoded)/(1<<20))
		if grew > 2*decoded {
			t.Errorf("%s of %s: the worker grew by %.1f MiB, over twice the %.1f MiB decoded image", c.kind, filepath.Base(c.in), float64(grew)/(1<<20), float64(decoded)/(1<<20))
		}
	}
}
