#!/bin/sh
# Makes the JPEGs the tests compare with libjpeg-turbo's own 1/8 decode:
# every chroma layout, restart intervals, optimised Huffman tables, sizes
# that are no multiple of a block, and the kinds jpegdc refuses.
# Needs python3 with numpy and cjpeg (Debian: libjpeg-turbo-progs).
set -eu
cd "$(dirname "$0")"
/usr/bin/python3 - <<'PY'
import numpy as np
def ppm(name, w, h, seed, grey=False):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(float)
    r = 128 + 90*np.sin(x*0.05 + y*0.01) + rng.normal(0, 12, (h, w))
    g = 128 + 90*np.cos(y*0.07) * np.sin(x*y*0.0004) + rng.normal(0, 12, (h, w))
    b = 128 + 90*np.sin((x+y)*0.03) + rng.normal(0, 12, (h, w))
    img = np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)
    with open(name, 'wb') as f:
        f.write(b'P6 %d %d 255\n' % (w, h))
        f.write(img.tobytes())
ppm('/tmp/jpegdc-a.ppm', 203, 141, 1)
ppm('/tmp/jpegdc-b.ppm', 517, 389, 2)
ppm('/tmp/jpegdc-c.ppm', 9, 17, 3)
ppm('/tmp/jpegdc-d.ppm', 1, 1, 4)
PY
a=/tmp/jpegdc-a.ppm b=/tmp/jpegdc-b.ppm
cjpeg -quality 90 -sample 2x2 -outfile c420.jpg $a
cjpeg -quality 90 -sample 2x1 -outfile c422.jpg $a
cjpeg -quality 90 -sample 1x1 -outfile c444.jpg $a
cjpeg -quality 90 -grayscale -outfile gray.jpg $a
cjpeg -quality 85 -sample 2x2 -restart 1 -outfile rst_rows.jpg $a
cjpeg -quality 90 -sample 2x1 -restart 5B -outfile rst_blocks.jpg $a
cjpeg -quality 95 -sample 2x2 -optimize -outfile optimized.jpg $b
cjpeg -quality 98 -sample 1x1 -outfile noisy444.jpg $a
cjpeg -quality 75 -sample 2x2 -outfile tiny.jpg /tmp/jpegdc-c.ppm
cjpeg -quality 75 -sample 2x2 -outfile one.jpg /tmp/jpegdc-d.ppm
cjpeg -quality 75 -grayscale -outfile tinygray.jpg /tmp/jpegdc-c.ppm
# Refused: jpegdc.ErrUnsupported.
cjpeg -quality 90 -sample 1x2 -outfile c440.jpg $a
cjpeg -quality 90 -progressive -outfile progressive.jpg $a
cjpeg -quality 90 -arithmetic -outfile arithmetic.jpg $a
cjpeg -quality 90 -rgb -outfile rgb.jpg $a
rm -f /tmp/jpegdc-?.ppm
