#!/usr/bin/python3
"""bench/peers/eval_peer.py: the Python peer of avs-eval (Debian python3-torch, numpy, PIL).

  eval_peer.py make DIR VIDEOS      write an S4-style test set: DIR/gt/test/<cat>/<vid>/<vid>_<k>.png
                                    (0/255 masks, some empty) and DIR/pred/<cat>/<vid>/<vid>_<k>.png
                                    (8-bit probability maps), 5 frames of 224x224 per video
  eval_peer.py eval GT PRED K       load the same PNGs and run the official AVSBench metrics
                                    with torch ops, in groups of K frames (K=20: the official
                                    test.sh batch of 4 videos x 5 frames); prints JSON

The metric functions (tests/gen/eval_golden.py) follow AVSBench avs_scripts/avs_s4/utils/utility.py (mask_iou,
Eval_Fmeasure, _eval_pr) on the CPU, with the sigmoid left out because the inputs are
probabilities (v/255), not logits. mIoU is the mean of per-frame IoU (DESIGN §4).
"""
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

# The official metric functions, one copy shared with the golden-test generator.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "gen"))
from eval_golden import eval_fmeasure, mask_iou_frames as mask_iou  # noqa: E402


def frames(gt_root, pred_root):
    """(gt path, pred path) in avs-eval's order: category, video (bytewise), k."""
    out = []
    for cat in sorted(os.listdir(gt_root)):
        for vid in sorted(os.listdir(os.path.join(gt_root, cat))):
            d = os.path.join(gt_root, cat, vid)
            ks = sorted(int(f[len(vid) + 1:-4]) for f in os.listdir(d) if f.endswith(".png"))
            for k in ks:
                name = f"{vid}_{k}.png"
                out.append((os.path.join(d, name), os.path.join(pred_root, cat, vid, name)))
    return out


def evaluate(gt_root, pred_root, k):
    t0 = time.time()
    torch.set_num_threads(int(os.environ.get("JOBS", "2")))
    pairs = frames(gt_root, pred_root)
    ious, fs = [], []
    for a in range(0, len(pairs), k):
        chunk = pairs[a:a + k]
        # as the official loader: masks via PIL -> float tensor; predictions v/255
        gt = torch.from_numpy(np.stack([(np.asarray(Image.open(g).convert("L")) >= 128)
                                        .astype(np.float32) for g, _ in chunk]))
        prob = torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("L"), np.float32)
                                          / np.float32(255) for _, p in chunk]))
        ious += mask_iou(prob, gt).tolist()
        fs.append(eval_fmeasure(prob, gt))
    return {"miou": float(np.mean(ious)), "fscore": float(np.mean(fs)), "frames": len(pairs),
            "seconds": time.time() - t0}


def make(root, videos):
    rng = np.random.default_rng(7)
    cats = ["ambulance", "baby_laughter", "cap_gun_shooting", "cat", "dog", "guitar",
            "helicopter", "horse", "lawn_mower", "male_speech", "piano", "race_car",
            "tabla", "ukulele", "truck", "coyote_howling", "keyboard_typing", "mynah_bird_singing",
            "playing_violin", "driving_buses", "chainsawing_trees", "lions_roaring",
            "female_singing"]
    yy, xx = np.mgrid[:224, :224]
    for v in range(videos):
        cat = cats[v % len(cats)]
        vid = f"vid{v:04d}"
        gd = os.path.join(root, "gt", "test", cat, vid)
        pd = os.path.join(root, "pred", cat, vid)
        os.makedirs(gd, exist_ok=True)
        os.makedirs(pd, exist_ok=True)
        cy, cx, r = rng.integers(40, 184, 2).tolist() + [int(rng.integers(15, 60))]
        for k in range(1, 6):
            m = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)
            if rng.random() < 0.1:
                m[:] = 0
            d = np.sqrt((yy - cy - 5 * k) ** 2 + (xx - cx) ** 2) - r
            p = 1 / (1 + np.exp(d / 6.0)) + rng.normal(0, 0.05, d.shape)
            Image.fromarray(m * 255).save(os.path.join(gd, f"{vid}_{k}.png"))
            Image.fromarray(np.clip(p * 255 + 0.5, 0, 255).astype(np.uint8)).save(
                os.path.join(pd, f"{vid}_{k}.png"))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "eval":
        print(json.dumps(evaluate(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    else:
        sys.exit(__doc__)
