package image

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"

	"github.com/ppool/ppool/jobs/image/turbojpeg"
	"github.com/ppool/ppool/jobs/kinds"
)

// The image job kinds. Each task reads one image file (or none, for the
// Mandelbrot) and writes one, atomically. Filters on large images and large
// Mandelbrot renders are split into strips that run in parallel and are
// stitched byte-identically.

// kindVersion is bumped when any kind's output changes for the same input
// and params, so that --resume redoes work.
const kindVersion = 4 // 2: big downscales in two steps (resize.go); 3: thumbnails decode JPEGs down to their own size; 4: and at 1/8 from DC coefficients (jpegdc), also without libjpeg-turbo

// splitPixels is the image size above which filters and renders are split
// into strips; stripRows is the strips' height. Both are fixed (variables
// only so that tests can use small images), so the plan never depends on
// the number of workers.
var (
	splitPixels = 8 << 20
	stripRows   = 512
)

var imageSlot = []kinds.Slot{{Name: "image", Doc: "PNG or JPEG files: a path, a glob, or a list of them"}}

var outputs = []string{"png", "jpg", "jpeg"}

var qualityParam = kinds.Param{Name: "quality", Type: kinds.TypeInt, Default: 90, Doc: "JPEG quality when writing .jpg", Min: kinds.Bound(1), Max: kinds.Bound(100)}

// compressionParam is the zlib level of a .png output, 6 by default as in
// Pillow and libvips.
var compressionParam = kinds.Param{Name: "compression", Type: kinds.TypeInt, Default: defaultCompression, Doc: "PNG compression when writing .png: 0 (none) to 9 (smallest, slowest)", Min: kinds.Bound(0), Max: kinds.Bound(9)}

var filters = map[string]Resample{"lanczos3": Lanczos3, "catmullrom": CatmullRom, "bilinear": Bilinear, "nearest": Nearest}

func init() {
	kinds.Register(&kinds.Kind{
		Name: "image.resize", Summary: "scale images to a size (0 for one side keeps the aspect ratio)", Version: kindVersion,
		Slots: imageSlot, Outputs: outputs, Backend: backend,
		Params: []kinds.Param{
			{Name: "width", Type: kinds.TypeInt, Default: 0, Doc: "output width in pixels; 0 follows the height's ratio", Min: kinds.Bound(0), Max: kinds.Bound(MaxDimension)},
			{Name: "height", Type: kinds.TypeInt, Default: 0, Doc: "output height in pixels; 0 follows the width's ratio", Min: kinds.Bound(0), Max: kinds.Bound(MaxDimension)},
			{Name: "filter", Type: kinds.TypeString, Default: "lanczos3", Doc: "resampling kernel", Choices: []string{"lanczos3", "catmullrom", "bilinear", "nearest"}},
			qualityParam, compressionParam,
		},
		Run: runResize,
	})
	kinds.Register(&kinds.Kind{
		Name: "image.thumbnail", Summary: "shrink images to fit a box, keeping the aspect ratio (Lanczos3)", Version: kindVersion,
		Slots: imageSlot, Outputs: outputs, Backend: backend,
		Params: []kinds.Param{
			{Name: "max_width", Type: kinds.TypeInt, Default: 256, Doc: "largest width", Min: kinds.Bound(1), Max: kinds.Bound(MaxDimension)},
			{Name: "max_height", Type: kinds.TypeInt, Default: 256, Doc: "largest height", Min: kinds.Bound(1), Max: kinds.Bound(MaxDimension)},
			qualityParam, compressionParam,
		},
		Run: func(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
			maxW, maxH := t.Int("max_width"), t.Int("max_height")
			b := taskBudget(t)
			b.operation = "thumbnail"
			b.operationBytes = func(w, h int) (uint64, error) {
				tw, th := thumbnailSize(w, h, maxW, maxH)
				if tw == w && th == h {
					return 4 * uint64(w) * uint64(h), nil // a copy
				}
				return resizeBytes(w, h, tw, th, Lanczos3), nil
			}
			// A JPEG is decoded at the smallest DCT scale that still
			// holds the thumbnail (thumbnailDecodeAtLeast), then resized
			// to the size the whole image gives.
			var full image.Point
			b.full = &full
			b.decodeAtLeast = func(w, h int) (int, int) {
				return thumbnailDecodeAtLeast(w, h, maxW, maxH)
			}
			in := hashInput(t, &b)
			img, err := load(in.path, b)
			if err != nil {
				return nil, err
			}
			tw, th := thumbnailSize(full.X, full.Y, maxW, maxH)
			out := img
			if img.Rect.Dx() != tw || img.Rect.Dy() != th {
				if out, err = Resize(img, tw, th, Lanczos3); err != nil {
					return nil, err
				}
			}
			return in.record(saveTask(t, out))
		},
	})
	filterKind("image.blur", "Gaussian blur (a true Gaussian, not a box approximation)", []kinds.Param{
		{Name: "sigma", Type: kinds.TypeFloat, Default: 2.0, Doc: "standard deviation in pixels", Min: kinds.Bound(0.1), Max: kinds.Bound(MaxSigma)},
	}, func(t *kinds.Task) Filter { return GaussianBlur{Sigma: t.Float("sigma")} })
	filterKind("image.sharpen", "unsharp mask", []kinds.Param{
		{Name: "sigma", Type: kinds.TypeFloat, Default: 1.0, Doc: "radius of the blur, in pixels", Min: kinds.Bound(0.1), Max: kinds.Bound(MaxSigma)},
		{Name: "amount", Type: kinds.TypeFloat, Default: 1.0, Doc: "strength: 1 adds the whole difference", Min: kinds.Bound(0), Max: kinds.Bound(10)},
		{Name: "threshold", Type: kinds.TypeInt, Default: 0, Doc: "smallest difference that is sharpened", Min: kinds.Bound(0), Max: kinds.Bound(255)},
	}, func(t *kinds.Task) Filter {
		return Sharpen{Sigma: t.Float("sigma"), Amount: t.Float("amount"), Threshold: t.Int("threshold")}
	})
	filterKind("image.grayscale", "convert to grey (Rec. 601 luma, as Pillow's convert(\"L\"))", nil,
		func(t *kinds.Task) Filter { return Grayscale{} })
	filterKind("image.edges", "Sobel edge magnitude", nil,
		func(t *kinds.Task) Filter { return Edges{} })
	kinds.Register(&kinds.Kind{
		Name: "image.mandelbrot", Summary: "render the Mandelbrot set (large renders run as tiles on every worker)", Version: kindVersion,
		Outputs: outputs, Backend: backend,
		Params: []kinds.Param{
			{Name: "width", Type: kinds.TypeInt, Default: 1920, Doc: "image width", Min: kinds.Bound(1), Max: kinds.Bound(MaxDimension)},
			{Name: "height", Type: kinds.TypeInt, Default: 1080, Doc: "image height", Min: kinds.Bound(1), Max: kinds.Bound(MaxDimension)},
			{Name: "center_re", Type: kinds.TypeFloat, Default: -0.5, Doc: "real part of the centre"},
			{Name: "center_im", Type: kinds.TypeFloat, Default: 0.0, Doc: "imaginary part of the centre"},
			{Name: "span", Type: kinds.TypeFloat, Default: 3.0, Doc: "width of the view in the complex plane", Min: kinds.Bound(1e-300)},
			{Name: "max_iter", Type: kinds.TypeInt, Default: 500, Doc: "iterations before a point counts as inside", Min: kinds.Bound(1), Max: kinds.Bound(MaxIterations)},
			qualityParam, compressionParam,
		},
		Run: func(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
			m := mandelbrotOf(t)
			r := image.Rect(0, 0, m.Width, m.Height)
			if t.Part != nil {
				r = image.Rect(0, t.Part.Row0, m.Width, t.Part.Row1)
			}
			img, err := m.Render(r)
			if err != nil {
				return nil, err
			}
			if t.Part != nil {
				return savePart(t, img)
			}
			return saveTask(t, img)
		},
		Split: func(t *kinds.Task) ([]kinds.Part, error) {
			m := mandelbrotOf(t)
			return strips(m.Width, m.Height), nil
		},
		Merge:   merge,
		PartExt: "png",
	})
}

// thumbnailDecodeAtLeast is the smallest size a JPEG w×h may be decoded at
// for a thumbnail in maxW×maxH: the thumbnail's own size. libjpeg-turbo's
// DCT scaling is no box filter: at 1/2 and 1/4 it keeps the block's low
// frequencies, at 1/8 it is the 8×8 block's exact mean, so the Lanczos
// step that follows needs no reducing gap of 2 as a box reduction does.
// On 6 MP photos shrunk to 256 px this decodes at 1/8 rather than 1/4,
// for about a third less work per thumbnail, within 49–51 dB PSNR of the
// exact one-step Lanczos of the full image (Pillow's thumbnail, drafting
// at 1/4, is 48–50 dB from it; TestThumbnailDCTScale).
func thumbnailDecodeAtLeast(w, h, maxW, maxH int) (int, int) {
	return thumbnailSize(w, h, maxW, maxH)
}

func mandelbrotOf(t *kinds.Task) Mandelbrot {
	return Mandelbrot{
		Width: t.Int("width"), Height: t.Int("height"),
		Center: complex(t.Float("center_re"), t.Float("center_im")),
		Span:   t.Float("span"), MaxIter: t.Int("max_iter"),
	}
}

// backend names what encodes and decodes JPEG files, which goes into the
// resume hash: libjpeg-turbo and Go's image/jpeg differ in their last bits.
func backend() string { return "jpeg " + turbojpeg.Backend() }

// filterKind registers a neighbourhood filter, split into strips with halos
// when the image is large.
func filterKind(name, summary string, params []kinds.Param, filterOf func(*kinds.Task) Filter) {
	kinds.Register(&kinds.Kind{
		Name: name, Summary: summary, Version: kindVersion,
		Slots: imageSlot, Outputs: outputs, Backend: backend,
		Params: append(params, qualityParam, compressionParam),
		Run: func(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
			f := filterOf(t)
			// For a strip, img is only the strip's input rows.
			b, strip := filterBudget(t, name, f, t.Part)
			in := hashInput(t, &b)
			img, err := load(in.path, b)
			if err != nil {
				return nil, err
			}
			if t.Part == nil {
				if f, ok := f.(inPlaceFilter); ok {
					// The output overwrites the input: one image
					// in memory, not two.
					if err := f.applyInPlace(img); err != nil {
						return nil, err
					}
					return in.record(saveTask(t, img))
				}
				out, err := f.Apply(img)
				if err != nil {
					return nil, err
				}
				return in.record(saveTask(t, out))
			}
			out, err := f.ApplyStrip(img, *strip)
			if err != nil {
				return nil, err
			}
			return savePart(t, out)
		},
		Split: func(t *kinds.Task) ([]kinds.Part, error) {
			return splitFilter(t, name, filterOf(t), t.Inputs["image"].Path)
		},
		Merge:   merge,
		PartExt: "png",
	})
}

// An inPlaceFilter can filter a whole image into itself, with the same
// result as Apply.
type inPlaceFilter interface {
	applyInPlace(img *image.NRGBA) error
}

// splitFilter plans a filter task's strips, and checks in the master, from
// the header, what each part and the merge will check, so that an image
// too large to filter fails once, here, rather than in every part.
func splitFilter(t *kinds.Task, name string, f Filter, path string) ([]kinds.Part, error) {
	size := budget{maxPixels: MaxPixels, maxMemory: math.MaxUint64}
	hd, head, err := inspectHead(path, size)
	if err != nil {
		return nil, err
	}
	parts := strips(hd.width, hd.height)
	var part *kinds.Part // the whole image, or a middle strip: none reads more rows
	if len(parts) > 0 {
		part = &parts[len(parts)/2]
	}
	// The same header, checked against what this task may use: the file
	// is read once for both.
	b, _ := filterBudget(t, name, f, part)
	if _, err := readHeader(head.bytes, head.size, b); err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	if len(parts) > 0 {
		// The merge holds the whole output and one strip.
		need := 4 * uint64(hd.width) * uint64(hd.height+stripRows)
		if limit := taskMemory(t, memoryLimit()); need > limit {
			return nil, &FileError{Path: path, Err: &decodeError{kind: ErrTooLarge, msg: fmt.Sprintf(
				"%s image is %d×%d pixels: stitching the %s's %d strips needs %s, over the limit of %s",
				hd.format, hd.width, hd.height, name, len(parts), formatBytes(need), formatBytes(limit))}}
		}
	}
	return parts, nil
}

// strips plans the parts of a w×h output: none below splitPixels.
func strips(w, h int) []kinds.Part {
	if w*h < splitPixels || h <= stripRows {
		return nil
	}
	var parts []kinds.Part
	for i, s := range PlanStrips(h, stripRows) {
		parts = append(parts, kinds.Part{Index: i, Row0: s.Y0, Row1: s.Y1, Col0: 0, Col1: w})
	}
	return parts
}

// merge stitches the strips into the output.
func merge(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
	var full *image.NRGBA
	for _, p := range t.Parts {
		strip, err := Load(p.Path)
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", p.Index, err)
		}
		if full == nil {
			last := t.Parts[len(t.Parts)-1]
			full = image.NewNRGBA(image.Rect(0, 0, strip.Bounds().Dx(), last.Row1))
		}
		Paste(full, strip, image.Pt(0, p.Row0))
	}
	if full == nil {
		return nil, fmt.Errorf("%s: nothing to merge", t.Label())
	}
	return saveTask(t, full)
}

// An input is a task's image file, and the hash of its bytes as load read
// them when the journal needs it.
type input struct {
	path string
	sum  string
}

// hashInput names t's image and, for a whole task (whose input hashes the
// journal records), has b's load hash the bytes it reads, so that the
// worker need not read the file a second time for the journal.
func hashInput(t *kinds.Task, b *budget) *input {
	in := &input{path: t.Inputs["image"].Path}
	if t.Mode == "run" {
		b.inputHash = &in.sum
	}
	return in
}

// record adds the input's hash to a task's outcome.
func (in *input) record(o *kinds.Outcome, err error) (*kinds.Outcome, error) {
	if err != nil || in.sum == "" {
		return o, err
	}
	o.InputHashes = map[string]string{in.path: in.sum}
	return o, nil
}

// saveTask writes the task's output, hashing it as it is written for the
// journal.
func saveTask(t *kinds.Task, img *image.NRGBA) (*kinds.Outcome, error) {
	level := t.Int("compression")
	if level == 0 {
		level = PNGStored
	}
	o := &kinds.Outcome{Output: t.Output}
	if err := saveHashed(t.Output, img, SaveOptions{Quality: t.Int("quality"), Compression: level}, &o.OutputHash); err != nil {
		return nil, err
	}
	b := img.Bounds()
	o.Info = map[string]any{"width": b.Dx(), "height": b.Dy()}
	return o, nil
}

// savePart writes a strip losslessly, whatever the final format: the merge
// encodes the stitched image once, as encoding the whole would.
func savePart(t *kinds.Task, img *image.NRGBA) (*kinds.Outcome, error) {
	o := &kinds.Outcome{Output: t.Part.Path}
	if err := saveHashed(o.Output, img, SaveOptions{Compression: 1}, &o.OutputHash); err != nil {
		return nil, err
	}
	return o, nil
}

func runResize(ctx context.Context, t *kinds.Task) (*kinds.Outcome, error) {
	w, h := t.Int("width"), t.Int("height")
	filter := filters[t.String("filter")]
	if w == 0 && h == 0 {
		return nil, fmt.Errorf("image.resize needs a width or a height (or both)")
	}
	if err := checkPixels("resize", w, h); err != nil {
		return nil, err // before reading the input
	}
	b := taskBudget(t)
	b.operation = "resize"
	b.operationBytes = func(srcW, srcH int) (uint64, error) {
		tw, th := resizeTarget(srcW, srcH, w, h)
		if err := checkPixels("resize", tw, th); err != nil {
			return 0, err
		}
		return resizeBytes(srcW, srcH, tw, th, filter), nil
	}
	var full image.Point
	b.full = &full
	b.decodeAtLeast = func(srcW, srcH int) (int, int) {
		tw, th := resizeTarget(srcW, srcH, w, h)
		if 2*tw <= srcW && 2*th <= srcH {
			return 2 * tw, 2 * th // a JPEG may be decoded at a DCT scale
		}
		return srcW, srcH
	}
	in := hashInput(t, &b)
	img, err := load(in.path, b)
	if err != nil {
		return nil, err
	}
	w, h = resizeTarget(full.X, full.Y, w, h)
	out, err := Resize(img, w, h, filter)
	if err != nil {
		return nil, err
	}
	return in.record(saveTask(t, out))
}

// resizeTarget is the size image.resize scales an image srcW×srcH to for
// its width and height params, one of which may be 0 (keep the aspect
// ratio).
func resizeTarget(srcW, srcH, w, h int) (int, int) {
	switch {
	case w == 0:
		w = max(1, (srcW*h+srcH/2)/srcH)
	case h == 0:
		h = max(1, (srcH*w+srcW/2)/srcW)
	}
	return w, h
}

// Size returns an image file's width and height as Load would return it
// (EXIF orientation applied), reading only its header. It refuses, as Load
// would, an image too large to load in this process.
func Size(path string) (w, h int, err error) {
	hd, err := inspect(path, loadBudget())
	return hd.width, hd.height, err
}

// inspect reads an image file's header and checks it against a budget,
// without decoding the pixels.
func inspect(path string, b budget) (header, error) {
	hd, _, err := inspectHead(path, b)
	return hd, err
}

// fileHead is the start of a file that holds its image header.
type fileHead struct {
	bytes []byte
	size  int // the whole file's
}

// inspectHead is inspect, returning also the bytes it read the header
// from, to check it again under another budget without reading the file.
func inspectHead(path string, b budget) (header, fileHead, error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, fileHead{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return header{}, fileHead{}, err
	}
	// The header is usually in the first few KiB, but APP segments (EXIF,
	// ICC profiles) can push a JPEG's frame header further: read more
	// until the header is whole or the file is.
	for size := int64(256 << 10); ; size *= 4 {
		head := make([]byte, min(st.Size(), size))
		n, err := f.ReadAt(head, 0)
		if err != nil && err != io.EOF { // EOF: shrunk since Stat
			return header{}, fileHead{}, &FileError{Path: path, Err: err}
		}
		fh := fileHead{bytes: head[:n], size: int(st.Size())}
		hd, err := readHeader(fh.bytes, fh.size, b)
		if errors.Is(err, ErrTruncated) && int64(n) == size && size < st.Size() {
			continue
		}
		if err != nil {
			return header{}, fileHead{}, &FileError{Path: path, Err: err}
		}
		return hd, fh, nil
	}
}
