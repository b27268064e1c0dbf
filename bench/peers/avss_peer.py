#!/usr/bin/python3
"""bench/peers/avss_peer.py: the Python peer of avs-eval --semantic (Debian python3-torch, PIL).

  avss_peer.py make DIR VIDEOS   an AVSS release tree (v2 videos, 10 frames, labels 320x180)
                                 and colour predictions in the official save_color_mask layout
  avss_peer.py eval DIR PRED     load them as the official code does (color_dataloader.py:
                                 PIL NEAREST to 224, palette equality) and run the official
                                 metric (tests/gen/avss_ref.py: softmax, argmax, torch.histc,
                                 batches of 4 videos); prints JSON with its inner seconds
"""
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "gen"))
from avss_ref import NC, PAL, S, T, colour_to_label, load_label, official  # noqa: E402


def make(root, videos):
    rng = np.random.default_rng(11)
    rel = os.path.join(root, "release")
    os.makedirs(rel, exist_ok=True)
    json.dump({"background": 0, **{f"c{k}": k for k in range(1, NC)}},
              open(os.path.join(rel, "label2idx.json"), "w"))
    rows = []
    for v in range(videos):
        uid = f"v{v:04d}"
        rows.append(f"{uid},test,v2")
        vd = os.path.join(rel, "v2", uid)
        os.makedirs(os.path.join(vd, "labels_rgb"), exist_ok=True)
        pd = os.path.join(root, "pred", uid)
        os.makedirs(pd, exist_ok=True)
        cls = rng.choice(np.arange(1, NC), 3, replace=False)
        for i in range(T):
            lab = np.zeros((180, 320), np.int64)
            lab[40:140, 60 + 5 * i:200 + 5 * i] = cls[0]
            lab[100:170, 220:300] = cls[1]
            Image.fromarray(PAL[lab].astype(np.uint8)).save(os.path.join(vd, "labels_rgb", f"{i}.png"))
            pl = np.zeros((S, S), np.int64)
            pl[50:170, 40 + 4 * i:160 + 4 * i] = cls[0] if rng.random() < 0.8 else cls[2]
            pl[130:210, 150:215] = cls[1]
            Image.fromarray(PAL[pl].astype(np.uint8)).save(os.path.join(pd, f"{uid}_{i}.png"))
    with open(os.path.join(rel, "metadata.csv"), "w") as fh:
        fh.write("uid,split,label\n" + "\n".join(rows) + "\n")


def evaluate(root, pred):
    t0 = time.time()
    torch.set_num_threads(int(os.environ.get("JOBS", "2")))
    rel = os.path.join(root, "release") if os.path.isdir(os.path.join(root, "release")) else root
    uids = [l.split(",")[0] for l in open(os.path.join(rel, "metadata.csv")).read().split("\n")[1:] if l]
    vids = []
    for uid in uids:
        frames = []
        for i in range(T):
            label = torch.from_numpy(load_label(os.path.join(rel, "v2", uid, "labels_rgb", f"{i}.png"))[0])
            pl = colour_to_label(Image.open(os.path.join(pred, uid, f"{uid}_{i}.png")).convert("RGB")
                                 .resize((S, S), Image.NEAREST))[0]
            # the official metric takes the model's output: one-hot logits of the saved classes
            x = torch.nn.functional.one_hot(torch.from_numpy(pl), NC).permute(2, 0, 1).float()
            frames.append((x, label, False))
        vids.append((uid, frames))
    r = official(vids)
    print(json.dumps({"miou": r["miou"], "fscore": r["fscore"], "frames": r["frames"],
                      "seconds": time.time() - t0}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        evaluate(sys.argv[2], sys.argv[3])
