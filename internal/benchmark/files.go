package benchmark

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ppool/ppool/jobs"
	_ "github.com/ppool/ppool/jobs/image" // the kinds the file jobs run
	"github.com/ppool/ppool/jobs/image/fastpng"
	"github.com/ppool/ppool/jobs/image/turbojpeg"
)

// pyFiles is Pillow's side of the file jobs, in multiprocessing.Pool.
//
//go:embed py_files.py
var pyFiles []byte

// thumbPx is the thumbnails' box, as in the jobs and Pillow's
// thumbnail((256, 256)).
const thumbPx = 256

// A fileJob is one end-to-end job (read, work, write) measured on every
// side that can run it: ppool through the jobs runner, and its
// counterparts.
type fileJob struct {
	key    string // the ppool figure; the others are python_KEY, vips_KEY
	label  string
	files  []string
	rounds int
	sides  []fileSide
}

// A fileSide runs a job over files, writing into out, and returns the
// wall time it took.
type fileSide struct {
	key string
	run func(files []string, out string) (time.Duration, error)
}

// fileJobs measures what users run: files it writes in a temporary
// folder, read, worked on and written by ppool exactly as `ppool run`
// does, and, in the same run, by Pillow in multiprocessing.Pool (if
// python is usable) and by vipsthumbnail (if on PATH).
func (b *bench) fileJobs(python string, withPython bool) error {
	pl := b.pl
	dir, err := os.MkdirTemp("", "ppool-bench-files-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.step("files: writing %d %d×%d JPEGs (quality 90) and %d PNGs in %s", pl.thumbFiles, pl.fileW, pl.fileH, pl.blurFiles, dir)
	jpgs, pngs, err := writePhotos(b.ctx, dir, pl.thumbFiles, pl.blurFiles, pl.fileW, pl.fileH, b.workers)
	if err != nil {
		return fmt.Errorf("writing the files: %w", err)
	}

	// The thumbnails' speed and pixels depend on the JPEG codec.
	b.r.add("jpeg_backend", turbojpeg.Backend(), "JPEG codec", "")
	runs := 0
	ppool := func(kind, params, ext string) fileSide {
		return fileSide{run: func(files []string, out string) (time.Duration, error) {
			runs++
			return b.ppoolFiles(dir, fmt.Sprintf("run%d", runs), kind, params, ext, files, out)
		}}
	}
	thumb := fileJob{key: "thumbnail_files_per_s", files: jpgs, rounds: pl.rounds,
		label: fmt.Sprintf("%d×%d JPEG → %d px JPEG, all workers, files/s", pl.fileW, pl.fileH, thumbPx),
		sides: []fileSide{ppool("image.thumbnail", fmt.Sprintf("{max_width: %d, max_height: %d, quality: 90}", thumbPx, thumbPx), ".jpg")}}
	blur := fileJob{key: "blur_png_files_per_s", files: pngs, rounds: pl.blurFileRounds,
		label: fmt.Sprintf("%d×%d PNG → blur σ=%d → PNG, all workers, files/s", pl.fileW, pl.fileH, blurSigma),
		sides: []fileSide{ppool("image.blur", fmt.Sprintf("{sigma: %d}", blurSigma), ".png")}}

	if vips, err := exec.LookPath("vipsthumbnail"); err == nil {
		thumb.sides = append(thumb.sides, fileSide{key: "vips_", run: func(files []string, out string) (time.Duration, error) {
			return b.vipsFiles(vips, files, out)
		}})
	} else {
		b.r.note("vipsthumbnail: not measured (not on PATH; Debian: apt-get install libvips-tools)")
	}
	if withPython {
		if err := exec.CommandContext(b.ctx, python, "-c", "import PIL").Run(); err != nil {
			b.r.note("python: the file jobs not measured: %s cannot import PIL (%v; Debian: apt-get install python3-pil)", python, err)
		} else {
			script := filepath.Join(dir, "py_files.py")
			if err := os.WriteFile(script, pyFiles, 0o644); err != nil {
				return err
			}
			for _, jj := range []struct {
				j   *fileJob
				job string
			}{{&thumb, "thumbnail"}, {&blur, "blur"}} {
				j, job := jj.j, jj.job
				j.sides = append(j.sides, fileSide{key: "python_", run: func(files []string, out string) (time.Duration, error) {
					return b.pythonFiles(python, script, job, files, out)
				}})
			}
		}
	}

	for _, j := range []fileJob{thumb, blur} {
		names := make([]string, len(j.sides))
		for i, s := range j.sides {
			names[i] = strings.TrimSuffix(s.key, "_")
			if names[i] == "" {
				names[i] = "ppool"
			}
		}
		b.step("files: %s on %d files, %s in turn; an untimed round on %d files, then the median of %d", j.key, len(j.files), strings.Join(names, ", "), min(b.workers, len(j.files)), j.rounds)
		times := make([][]time.Duration, len(j.sides))
		for i, s := range j.sides {
			if _, err := s.run(j.files[:min(b.workers, len(j.files))], filepath.Join(dir, "out", "warm", names[i])); err != nil {
				return fmt.Errorf("%s (%s): %w", j.key, names[i], err)
			}
		}
		for range j.rounds {
			for i, s := range j.sides {
				out := filepath.Join(dir, "out", j.key, names[i])
				if err := os.RemoveAll(out); err != nil {
					return err
				}
				d, err := s.run(j.files, out)
				if err != nil {
					return fmt.Errorf("%s (%s): %w", j.key, names[i], err)
				}
				if err := countOutputs(out, len(j.files)); err != nil {
					return fmt.Errorf("%s (%s): %w", j.key, names[i], err)
				}
				times[i] = append(times[i], d)
			}
		}
		for i, s := range j.sides {
			label := j.label
			switch s.key {
			case "python_":
				label = "Pillow, multiprocessing.Pool: " + label
			case "vips_":
				label = "vipsthumbnail: " + label
			}
			b.r.add(s.key+j.key, float64(len(j.files))/percentile(times[i], 0.5).Seconds(), label, "files/s")
		}
	}
	r := b.r
	r.ratio("thumbnail_vs_python", "thumbnail_files_per_s", "python_thumbnail_files_per_s", "thumbnails: ppool files/s ÷ Pillow's")
	r.ratio("thumbnail_vs_vips", "thumbnail_files_per_s", "vips_thumbnail_files_per_s", "thumbnails: ppool files/s ÷ vipsthumbnail's")
	r.ratio("blur_png_vs_python", "blur_png_files_per_s", "python_blur_png_files_per_s", "PNG blur: ppool files/s ÷ Pillow's")
	return nil
}

// ppoolFiles writes a jobs file NAME.yaml in dir with one job of kind
// over files, and runs it as `ppool run` does (its own pool of b.workers,
// the journal beside it, outputs written atomically into out).
func (b *bench) ppoolFiles(dir, name, kind, params, ext string, files []string, out string) (time.Duration, error) {
	var y strings.Builder
	fmt.Fprintf(&y, "jobs:\n  - name: files\n    kind: %s\n    params: %s\n    output: %s\n    inputs:\n",
		kind, params, strconv.Quote(filepath.Join(out, "{stem}"+ext)))
	for _, f := range files {
		fmt.Fprintf(&y, "      - %s\n", strconv.Quote(f))
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(y.String()), 0o644); err != nil {
		return 0, err
	}
	file, err := jobs.ReadFile(path)
	if err != nil {
		return 0, err
	}
	plan, err := file.Expand()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	s, err := jobs.Run(b.ctx, plan, jobs.Options{Workers: b.workers, SelfBinary: b.self})
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if s.OK != plan.Tasks || plan.Tasks != len(files) {
		return 0, fmt.Errorf("%d of %d tasks ok (%d failed)", s.OK, len(files), s.Failed)
	}
	return d, nil
}

// vipsFiles runs vipsthumbnail once a file, b.workers at a time, as the
// issue's user did: with GNU parallel if it is on PATH, else xargs -P.
func (b *bench) vipsFiles(vips string, files []string, out string) (time.Duration, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	args := []string{vips, "-s", strconv.Itoa(thumbPx), "-o", filepath.Join(out, "%s.jpg[Q=90]")}
	var cmd *exec.Cmd
	if parallel, err := exec.LookPath("parallel"); err == nil {
		cmd = exec.CommandContext(b.ctx, parallel, append(append([]string{"--will-cite", "-j", strconv.Itoa(b.workers)}, args...), append([]string{":::"}, files...)...)...)
	} else {
		cmd = exec.CommandContext(b.ctx, "xargs", append([]string{"-P", strconv.Itoa(b.workers), "-n", "1"}, args...)...)
		cmd.Stdin = strings.NewReader(strings.Join(files, "\n") + "\n")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w\n%s", cmd, err, tail(stderr.String(), 2000))
	}
	return d, nil
}

// pythonFiles runs py_files.py once and returns the time it measured
// (from its Pool's start to its end; the interpreter's start and imports
// are not counted, as ppool's own process start is not).
func (b *bench) pythonFiles(python, script, job string, files []string, out string) (time.Duration, error) {
	cmd := exec.CommandContext(b.ctx, python, append([]string{script, job, out, strconv.Itoa(b.workers)}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w\n%s", python, filepath.Base(script), err, tail(stderr.String(), 2000))
	}
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "seconds "); ok {
			s, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("%s: bad time %q", filepath.Base(script), v)
			}
			return time.Duration(s * float64(time.Second)), nil
		}
	}
	return 0, fmt.Errorf("%s printed no time\n%s", filepath.Base(script), tail(stderr.String(), 2000))
}

// countOutputs checks that a run wrote n files into out.
func countOutputs(out string, n int) error {
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	if len(entries) != n {
		return fmt.Errorf("%d outputs in %s, want %d", len(entries), out, n)
	}
	return nil
}

// writePhotos writes max(nJPEG, nPNG) distinct opaque RGB images of w×h
// into dir: the first nJPEG as jpg/NN.jpg (quality 90), the first nPNG as
// png/NN.png (zlib level 6). They are smooth colour fields with texture
// and noise (jobs/bench_test.go's writeImages), so that they compress,
// blur and shrink like photographs rather than like flat colour or noise.
func writePhotos(ctx context.Context, dir string, nJPEG, nPNG, w, h, workers int) (jpgs, pngs []string, err error) {
	for _, sub := range []string{"jpg", "png"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, nil, err
		}
	}
	for i := range nJPEG {
		jpgs = append(jpgs, filepath.Join(dir, "jpg", fmt.Sprintf("%02d.jpg", i)))
	}
	for i := range nPNG {
		pngs = append(pngs, filepath.Join(dir, "png", fmt.Sprintf("%02d.png", i)))
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i := range max(nJPEG, nPNG) {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			img := photo(i, w, h)
			if i < nJPEG {
				if err := writeFile(jpgs[i], func(f *os.File) error { return jpeg.Encode(f, img, &jpeg.Options{Quality: 90}) }); err != nil {
					return err
				}
			}
			if i < nPNG {
				return writeFile(pngs[i], func(f *os.File) error { return fastpng.Encode(f, img, 6) })
			}
			return nil
		})
	}
	return jpgs, pngs, g.Wait()
}

func writeFile(path string, write func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// photo is image i of writePhotos.
func photo(i, w, h int) *image.NRGBA {
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	fx, fy := 0.002+0.001*float64(i), 0.003
	sx := make([]float64, w)
	for x := range sx {
		sx[x] = math.Sin(float64(x) * fx)
	}
	for y := range h {
		cy := math.Cos(float64(y) * fy)
		g := 128 + 80*math.Sin(float64(y)*0.004+float64(i))
		for x := range w {
			v := sx[x] * cy
			t := 20 * math.Sin(float64(x*y)*0.0001)
			img.SetNRGBA(x, y, color.NRGBA{
				R: clamp8(128 + 100*v + t + 8*rng.NormFloat64()),
				G: clamp8(g + 8*rng.NormFloat64()),
				B: clamp8(128 - 100*v + 8*rng.NormFloat64()),
				A: 255,
			})
		}
	}
	return img
}

func clamp8(v float64) uint8 { return uint8(max(0, min(255, math.Round(v)))) }
