"""Pillow references for the tests in ../*_test.go. Run by gen.sh."""
import numpy as np
from PIL import Image, ImageOps

photo = Image.open("photo.png").convert("RGB")
small = Image.open("small.png").convert("RGB")
rgba = Image.open("rgba.png").convert("RGBA")

# Resize: down by a non-integer factor, and up.
for name, f in [("lanczos", Image.LANCZOS), ("bicubic", Image.BICUBIC),
                ("bilinear", Image.BILINEAR), ("nearest", Image.NEAREST)]:
    photo.resize((100, 75), f).save(f"pillow_{name}_down.png")
for name, f in [("lanczos", Image.LANCZOS), ("bicubic", Image.BICUBIC)]:
    small.resize((150, 113), f).save(f"pillow_{name}_up.png")
# Pillow resizes RGBA in premultiplied alpha ("RGBa").
rgba.resize((50, 37), Image.LANCZOS).save("pillow_lanczos_rgba.png")

# Rec. 601 luma.
photo.convert("L").save("pillow_gray.png")

# JPEG variants, each with Pillow's (libjpeg-turbo's) decoding as reference.
photo.resize((128, 96), Image.LANCZOS).save("progressive.jpg", quality=95, subsampling=0, progressive=True)
Image.open("progressive.jpg").convert("RGB").save("progressive_ref.png")

# CMYK with real black: Pillow writes Adobe-inverted CMYK, as Photoshop does.
h, w = 48, 64
y, x = np.mgrid[0:h, 0:w]
cmyk = np.stack([x * 255 // (w - 1), y * 255 // (h - 1),
                 (x + y) * 255 // (w + h - 2), (x // 16) * 60], axis=-1).astype(np.uint8)
Image.fromarray(cmyk, "CMYK").save("cmyk.jpg", quality=95)
Image.open("cmyk.jpg").convert("RGB").save("cmyk_ref.png")
Image.open("ycck.jpg").convert("RGB").save("ycck_ref.png")

# PNG colour types Go's encoder never writes: grey+alpha, and palette with
# a transparent entry.
la = small.convert("L")
la.putalpha(Image.linear_gradient("L").resize(small.size))
la.save("gray_alpha.png")
la.convert("RGBA").save("gray_alpha_ref.png")
pal = small.quantize(32)
pal.info["transparency"] = 0
pal.save("palette_trns.png", transparency=0)
Image.open("palette_trns.png").convert("RGBA").save("palette_trns_ref.png")

# EXIF orientation 1-8 on a small asymmetric image, in PNG's eXIf chunk
# (lossless) and in JPEG's APP1, with Pillow's exif_transpose as reference.
base = Image.new("RGB", (6, 4))
base.putdata([(40 * (i % 6), 60 * (i // 6), 255 - 10 * i) for i in range(24)])
for o in range(1, 9):
    exif = Image.Exif()
    exif[0x0112] = o
    base.save(f"orient{o}.png", exif=exif.tobytes())
    ImageOps.exif_transpose(Image.open(f"orient{o}.png")).save(f"orient{o}_ref.png")
big = photo.resize((64, 48))
exif = Image.Exif()
exif[0x0112] = 6
big.save("exif6.jpg", quality=95, subsampling=0, exif=exif.tobytes())
ImageOps.exif_transpose(Image.open("exif6.jpg")).convert("RGB").save("exif6_ref.png")
