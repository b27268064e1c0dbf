#!/usr/bin/python3
"""Cross-check avs-ingest's AVSS masks with PIL, as the official loader makes them
(ref: AVSBench avs_scripts/avss/color_dataloader.py: Image.open(...).convert('RGB'),
resize((224, 224), Image.NEAREST), then the colour -> class map of get_v2_pallete).

usage: avss_check.py STORE TREE
For every mask row of the store's index: the colour label TREE/<set>/<uid>/labels_rgb/<k-1>.png
resized with PIL NEAREST to the stored mask's size and mapped by palette equality (no
palette colour: 255) must equal masks/<uid>/<k>.png; mapped at its own size it must equal
released/<uid>/masks/<k>.png; the count of unmapped pixels must equal masks.unknown_pixels.
Prints one line per mismatch and a summary; exit 1 on any mismatch, 77 (SKIP) without PIL.
"""
import json
import os
import sqlite3
import sys

try:
    import numpy as np
    from PIL import Image
except ImportError as e:  # Debian: apt-get install python3-pil python3-numpy
    print(f"SKIP: needs PIL and numpy for /usr/bin/python3 ({e})")
    sys.exit(77)


def palette(n):
    """Class j's colour: base-8 digits of j, bit 0/1/2 of digit i at bit 7-i of R/G/B."""
    pal = np.zeros((n, 3), np.int64)
    for j in range(n):
        lab, i = j, 0
        while lab > 0:
            pal[j, 0] |= ((lab >> 0) & 1) << (7 - i)
            pal[j, 1] |= ((lab >> 1) & 1) << (7 - i)
            pal[j, 2] |= ((lab >> 2) & 1) << (7 - i)
            i += 1
            lab >>= 3
    return pal


def colour_to_index(rgb, pal):
    key = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    out = np.full(key.shape, 255, np.uint8)
    for j, c in enumerate(pal):
        out[key == ((c[0] << 16) | (c[1] << 8) | c[2])] = j
    return out


def main():
    store, tree = sys.argv[1], sys.argv[2]
    with open(os.path.join(tree, "label2idx.json")) as f:
        pal = palette(len(json.load(f)))
    db = sqlite3.connect(os.path.join(store, "avs.db"))
    rows = db.execute("SELECT v.uid, v.avss_set, m.k, m.path, m.released, m.unknown_pixels "
                      "FROM masks m JOIN videos v ON v.id = m.video_id WHERE m.kind = 'class'").fetchall()
    bad = 0
    for uid, aset, k, path, released, unknown in rows:
        label = Image.open(os.path.join(tree, aset, uid, "labels_rgb", f"{k - 1}.png")).convert("RGB")
        ours = np.array(Image.open(os.path.join(store, path)))
        h, w = ours.shape
        want = colour_to_index(np.array(label.resize((w, h), Image.NEAREST)), pal)
        full = colour_to_index(np.array(label), pal)
        ours_rel = np.array(Image.open(os.path.join(store, released)))
        checks = [("store-size mask", np.array_equal(ours, want)),
                  ("released mask", np.array_equal(ours_rel, full)),
                  ("unknown_pixels", int((full == 255).sum()) == unknown)]
        for what, ok in checks:
            if not ok:
                bad += 1
                print(f"MISMATCH {uid} k={k}: {what}")
    print(f"avss_check: {len(rows)} masks, {bad} mismatches")
    sys.exit(1 if bad or not rows else 0)


main()
