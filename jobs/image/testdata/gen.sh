#!/bin/sh
# Regenerates the reference images in this folder. The tests only read
# them; nothing here runs during go test.
#
# Needs (Debian): libvips-tools, python3-pil, python3-numpy, imagemagick.
# The inputs photo.png, small.png, rgba.png and notes.png come from
# makePhoto and friends in ../fixtures_test.go:
#   (cd .. && go test . -run TestFixtures -update)
set -eu
cd "$(dirname "$0")"

# libvips gaussblur. Its defaults (min_ampl 0.2, integer precision) cut the
# kernel where it falls to 0.2 of its peak (radius 3 for sigma 2, ~1.5σ)
# and round the mask to small integers; that is an approximation, not the
# Gaussian. min_ampl 0.005 with float precision gives the full kernel out to
# ⌈3σ⌉ (radius 6 for sigma 2), the same one GaussianBlur uses, so those
# files are the true comparison; the default one is kept to document the gap.
vips gaussblur photo.png vips_blur2.png 2 --precision float --min-ampl 0.005
vips gaussblur photo.png vips_blur5.png 5 --precision float --min-ampl 0.005
vips gaussblur photo.png vips_blur2_default.png 2

# PNG variants written by libvips: Adam7 interlaced, and 16 bits per channel.
vips pngsave small.png interlaced.png --interlace
vips colourspace small.png small16.png rgb16

# A YCCK JPEG (Adobe transform 2), as ImageMagick writes one on request.
/usr/bin/convert-im6.q16 small.png -colorspace CMYK -define jpeg:colorspace=5 -quality 95 ycck.jpg

/usr/bin/python3 gen_pillow.py
