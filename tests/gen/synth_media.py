#!/usr/bin/python3
"""synth_media.py: write tests/fixtures/synth/media/, a tiny media folder for avs-synth tests.

Run once with Debian's Python (numpy, PIL):  /usr/bin/python3 tests/gen/synth_media.py
It has the layout of the real media cache (synth/synth.h) but with objects whose colour and
sound are known, so tests can check masks against pixels and sounds against masks:
  objects/red_disc/disc.png       solid red (220,30,30) disc, soft 1-px alpha edge
  objects/blue_square/square.png  solid blue (30,40,220) square
  objects/green_tri/tri.png       solid green (30,200,40) triangle
  sounds/<category>/tone.wav      0.5 s sine, 500 / 1200 / 3000 Hz, 11025 Hz mono s16
  backgrounds/gray.jpg            grey texture (low saturation, so colours stand out)
  categories.csv                  the three categories, without class indices
Files are small (a few KB each) and deterministic (seeded).
"""
import os
import numpy as np
from PIL import Image
import wave

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "synth", "media")
rng = np.random.default_rng(7)

def save_rgba(path, rgb, alpha):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    h, w = alpha.shape
    img = np.zeros((h, w, 4), np.uint8)
    img[..., :3] = rgb
    img[..., 3] = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    Image.fromarray(img, "RGBA").save(path, optimize=True)

def coverage(inside, h, w, ss=4):
    """Alpha by 4x4 supersampling of an inside(x, y) test."""
    ys, xs = np.mgrid[0:h * ss, 0:w * ss]
    m = inside((xs + 0.5) / ss, (ys + 0.5) / ss)
    return m.reshape(h, ss, w, ss).mean(axis=(1, 3))

o = os.path.join(root, "objects")
save_rgba(os.path.join(o, "red_disc", "disc.png"), (220, 30, 30),
          coverage(lambda x, y: (x - 32) ** 2 + (y - 32) ** 2 <= 30 ** 2, 64, 64))
save_rgba(os.path.join(o, "blue_square", "square.png"), (30, 40, 220),
          coverage(lambda x, y: (x >= 2) & (x <= 46) & (y >= 2) & (y <= 46), 48, 48))
save_rgba(os.path.join(o, "green_tri", "tri.png"), (30, 200, 40),
          coverage(lambda x, y: (y >= 2) & (y <= 54) & (np.abs(x - 28) <= (y - 2) * 0.5), 56, 56))

for cat, freq in (("red_disc", 500), ("blue_square", 1200), ("green_tri", 3000)):
    d = os.path.join(root, "sounds", cat)
    os.makedirs(d, exist_ok=True)
    rate, n = 11025, 5512
    t = np.arange(n) / rate
    env = np.minimum(1, np.minimum(t, t[::-1]) / 0.01)
    x = (0.5 * np.sin(2 * np.pi * freq * t) * env * 32767).astype("<i2")
    with wave.open(os.path.join(d, "tone.wav"), "wb") as f:
        f.setnchannels(1); f.setsampwidth(2); f.setframerate(rate); f.writeframes(x.tobytes())

b = os.path.join(root, "backgrounds")
os.makedirs(b, exist_ok=True)
g = 120 + rng.normal(0, 12, (18, 24)).clip(-40, 40)
g = np.kron(g, np.ones((4, 4)))
bg = np.stack([g, g + 4, g - 4], axis=-1).clip(0, 255).astype(np.uint8)
Image.fromarray(bg, "RGB").save(os.path.join(b, "gray.jpg"), quality=85)

with open(os.path.join(root, "categories.csv"), "w") as f:
    f.write("category,imagenet_index,imagenet_name,audioset_index,audioset_name\n")
    for c in ("blue_square", "green_tri", "red_disc"):
        f.write(f"{c},,,,\n")
print("wrote", root)
