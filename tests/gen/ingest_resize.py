#!/usr/bin/python3
"""Writes tests/fixtures/ingest/resize.bin: images resized by OpenCV's cv2.resize(INTER_LINEAR),
the reference for core/resize.c (our OpenCV-convention bilinear).

Run with Debian's python (python3-opencv, python3-numpy):  /usr/bin/python3 tests/gen/ingest_resize.py
Format: magic b"AVSRSZ1\\0", u32 count, then per case: u32 sw, sh, c, dw, dh; src bytes [sh][sw][c];
dst bytes [dh][dw][c] (little-endian).
"""
import os, struct
import numpy as np
import cv2

rng = np.random.default_rng(7)
cases = [((150, 100, 3), (96, 96)),   # shrink, non-integer factors
         ((37, 23, 3), (100, 61)),    # enlarge
         ((64, 48, 1), (64, 48)),     # same size
         ((1280 // 8, 720 // 8, 3), (224, 224)),  # 16:9 to square, like ingest
         ((9, 5, 3), (4, 3))]         # tiny, both borders
out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "ingest", "resize.bin")
with open(out, "wb") as f:
    f.write(b"AVSRSZ1\0" + struct.pack("<I", len(cases)))
    for (sw, sh, c), (dw, dh) in cases:
        src = rng.integers(0, 256, size=(sh, sw, c), dtype=np.uint8)
        # smooth part + noise, so that interpolation errors show
        yy, xx = np.mgrid[0:sh, 0:sw]
        src[..., 0] = ((xx * 255) // max(sw - 1, 1)).astype(np.uint8) // 2 + src[..., 0] // 2
        dst = cv2.resize(src if c > 1 else src[..., 0], (dw, dh), interpolation=cv2.INTER_LINEAR)
        dst = dst.reshape(dh, dw, c)
        f.write(struct.pack("<5I", sw, sh, c, dw, dh) + src.tobytes() + dst.tobytes())
print("wrote", out, os.path.getsize(out), "bytes")
