"""Pillow references for ../turbojpeg_test.go; the tests only read them.

Run with Debian's python3-pil (Pillow on libjpeg-turbo):
    cd testdata && /usr/bin/python3 gen_pillow.py
"""
from PIL import Image

photo = Image.open("../../testdata/photo.png").convert("RGB")

# A 4:2:0 file (Pillow's default below quality 96), and Pillow's decoding
# of it at full size and DCT-scaled, as Image.thumbnail does with draft().
photo.save("photo420.jpg", quality=90)
Image.open("photo420.jpg").save("photo420_ref.png")
for div in (2, 4, 8):
    im = Image.open("photo420.jpg")
    im.draft("RGB", (im.width // div, im.height // div))
    im.save(f"photo420_{div}_ref.png")
