#!/usr/bin/python3
"""tests/gen/eval_golden.py: golden fixtures for avs-eval (tests/fixtures/eval/).

Run with the Debian PyTorch (python3-torch, numpy, PIL):   /usr/bin/python3 tests/gen/eval_golden.py
It rewrites tests/fixtures/eval/ from a fixed seed:

  s4/gt/test/<category>/<video>/<video>_<k>.png   GT (gray 0/255, RGB for one video), k = 1..5
  s4/pred/<category>/<video>/<video>_<k>.{png,logits}
        predictions in the official save_mask layout (no split level): 8-bit probability
        PNGs (v/255), binary PNGs, gray+alpha PNGs and .logits files (format: eval/eval.h)
  ms3/gt/test/<video>/<video>_<k>.png             palette ('P') GT, index 255 = foreground
  ms3/pred/<video>/<video>_<k-1>.png              numbered from 0, as the official save_mask does
  bad/gray16.png a 16-bit PNG (must be refused)
  golden.json    expected numbers from the OFFICIAL algorithm, re-implemented here with torch
                 ops exactly as AVSBench avs_scripts/avs_s4/utils/utility.py does it (mask_iou,
                 Eval_Fmeasure, _eval_pr; sigmoid applied to logits, v/255 used as is for PNGs),
                 for grouping per video, 5 and 20 frames; plus the float32 threshold table and
                 logits whose torch sigmoid lands exactly on a threshold or rounds to 0.5.

Cases: empty-GT frames, an all-empty-GT video (group), a 3-frame video (so 5-frame groups
straddle videos), logits near 0, probabilities exactly on thresholds, PNG values 127/128,
video names with underscores.
"""
import json
import os
import shutil
import struct

import numpy as np
import torch
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "eval")
H = W = 32
rng = np.random.default_rng(20240611)


# ---- the official algorithm (ref: AVSBench utility.py), taking probabilities --------------
def mask_iou_frames(prob, target, eps=1e-7):
    """Per-frame IoU of the official mask_iou, sigmoid already applied: prob, target [N,H,W] float32."""
    num_pixels = prob.size(-1) * prob.size(-2)
    no_obj_flag = (target.sum(2).sum(1) == 0)
    pred = (prob > 0.5).int()
    inter = (pred * target).sum(2).sum(1)
    union = torch.max(pred, target).sum(2).sum(1)
    inter_no_obj = ((1 - target) * (1 - pred)).sum(2).sum(1)
    inter[no_obj_flag] = inter_no_obj[no_obj_flag]
    union[no_obj_flag] = num_pixels
    return inter / (union + eps)


def mask_iou(prob, target, eps=1e-7):
    """The official mask_iou (batch mean)."""
    return torch.sum(mask_iou_frames(prob, target, eps)) / prob.size(0)


def eval_pr(y_pred, y, num):
    prec, recall = torch.zeros(num), torch.zeros(num)
    thlist = torch.linspace(0, 1 - 1e-10, num)
    for i in range(num):
        y_temp = (y_pred >= thlist[i]).float()
        tp = (y_temp * y).sum()
        prec[i], recall[i] = tp / (y_temp.sum() + 1e-20), tp / (y.sum() + 1e-20)
    return prec, recall


def eval_fmeasure(prob, gt, pr_num=255):
    N = prob.size(0)
    beta2 = 0.3
    avg_f, img_num = 0.0, 0
    score = torch.zeros(pr_num)
    for img_id in range(N):
        if torch.mean(gt[img_id]) == 0.0:
            continue
        prec, recall = eval_pr(prob[img_id], gt[img_id], pr_num)
        f_score = (1 + beta2) * prec * recall / (beta2 * prec + recall)
        f_score[f_score != f_score] = 0
        avg_f += f_score
        img_num += 1
        score = avg_f / img_num
    return score.max().item()


# ---- fixture writers ------------------------------------------------------------------
def write_logits(path, x):
    x = np.ascontiguousarray(x, dtype="<f4")
    with open(path, "wb") as f:
        f.write(b"AVSLOGIT" + struct.pack("<6I", 1, 32, x.shape[1], x.shape[0], 1, 0))
        f.write(x.tobytes())


def gray_palette():
    return [c for v in range(256) for c in (v, v, v)]


def blob_mask(empty=False):
    m = np.zeros((H, W), np.uint8)
    if empty:
        return m
    for _ in range(rng.integers(1, 4)):
        cy, cx, r = rng.integers(4, H - 4), rng.integers(4, W - 4), rng.integers(3, 10)
        yy, xx = np.mgrid[:H, :W]
        m[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    return m


def sigmoid_f32(x):
    return torch.sigmoid(torch.from_numpy(np.asarray(x, np.float32))).numpy()


def exact_threshold_logits(th):
    """float32 logits whose torch sigmoid equals a threshold exactly (searched near logit(t))."""
    out = []
    for i in list(range(1, 254, 7)) + [126, 127, 128]:
        t = float(th[i])
        x0 = np.float32(np.log(t / (1 - t)))
        cand = [x0]
        up = dn = x0
        for _ in range(64):
            up = np.nextafter(up, np.float32(np.inf))
            dn = np.nextafter(dn, np.float32(-np.inf))
            cand += [up, dn]
        p = sigmoid_f32(np.array(cand, np.float32))
        hits = [c for c, q in zip(cand, p) if q == th[i]]
        if hits:
            out.append(hits[0])
    return np.array(out, np.float32)


def near_zero_logits():
    v = [0.0, 1e-9, -1e-9, 1e-8, -1e-8, 5.9e-8, 6e-8, 1.1e-7, 1.2e-7, 1.3e-7, 2e-7, 3e-7,
         -3e-7, 1e-6, -1e-6, 1e-4, -1e-4, 88.0, -88.0, 104.0, -104.0]
    return np.array(v, np.float32)


def write_png_gray(path, a):
    Image.fromarray(a.astype(np.uint8), "L").save(path)


def main():
    shutil.rmtree(ROOT, ignore_errors=True)
    th = torch.linspace(0, 1 - 1e-10, 255).numpy()
    special = np.concatenate([exact_threshold_logits(th), near_zero_logits()])

    # video: (category, name, frames, gt kind, pred kind, empty-GT frame ids)
    s4 = [
        ("baby_laughter", "v_x_1", 5, "gray", "u8edge", {2}),
        ("dog", "dog_a", 5, "gray", "u8", {3}),
        ("dog", "dog_b", 3, "gray", "binary", set()),
        ("guitar", "guitar_a", 5, "gray", "logits", {0}),
        ("guitar", "guitar_b", 5, "gray", "special", {4}),
        ("piano", "piano_a", 5, "gray", "u8", {0, 1, 2, 3, 4}),
        ("piano", "piano_b", 5, "rgb", "la", set()),
    ]
    frames = []  # in evaluation order: (video index, prob [H,W] f32, target [H,W] f32)
    for vi, (cat, name, n, gtk, pk, empty) in enumerate(s4):
        gdir = os.path.join(ROOT, "s4", "gt", "test", cat, name)
        pdir = os.path.join(ROOT, "s4", "pred", cat, name)
        os.makedirs(gdir)
        os.makedirs(pdir)
        for f in range(n):
            k = f + 1
            m = blob_mask(f in empty)
            if gtk == "rgb":
                img = np.zeros((H, W, 3), np.uint8)
                img[...] = (120, 60, 250)          # luma 99 -> background
                img[m == 1] = (255, 200, 30)       # luma 197 -> foreground
                img[0, 0] = (128, 128, 128)        # luma exactly 128 -> foreground
                img[0, 1] = (127, 128, 128)        # luma 127.7 -> 127 -> background
                m[0, 0], m[0, 1] = 1, 0
                Image.fromarray(img, "RGB").save(os.path.join(gdir, f"{name}_{k}.png"))
            else:
                write_png_gray(os.path.join(gdir, f"{name}_{k}.png"), m * 255)
            base = os.path.join(pdir, f"{name}_{k}")
            if pk in ("logits", "special"):
                x = (rng.standard_normal((H, W)) * 3 + (m * 2 - 1) * 1.5).astype(np.float32)
                if pk == "special":
                    flat = x.reshape(-1)
                    pos = rng.choice(flat.size, size=special.size, replace=False)
                    flat[pos] = special
                write_logits(base + ".logits", x)
                prob = sigmoid_f32(x)
            else:
                if pk == "binary":
                    v = np.where(rng.random((H, W)) < 0.2, 1 - m, m).astype(np.uint8) * 255
                else:
                    v = np.clip(m * 140 + rng.integers(0, 140, (H, W)), 0, 255).astype(np.uint8)
                    if pk == "u8edge":
                        v.reshape(-1)[:64] = np.tile([0, 127, 128, 255], 16)
                if pk == "la":
                    la = np.stack([v, rng.integers(0, 256, (H, W)).astype(np.uint8)], -1)
                    Image.fromarray(la, "LA").save(base + ".png")
                else:
                    write_png_gray(base + ".png", v)
                prob = v.astype(np.float32) / np.float32(255)
            frames.append((vi, prob.astype(np.float32), m.astype(np.float32)))

    def evaluate(frames, names, groups_of):
        probs = torch.from_numpy(np.stack([f[1] for f in frames]))
        gts = torch.from_numpy(np.stack([f[2] for f in frames]))
        ious = [mask_iou(probs[i:i + 1], gts[i:i + 1]).item() for i in range(len(frames))]
        inter = sum(float(((probs[i] > 0.5).float() * gts[i]).sum()) for i in range(len(frames)))
        union = sum(float(torch.max((probs[i] > 0.5).float(), gts[i]).sum()) for i in range(len(frames)))
        out = {}
        for key, size in groups_of.items():
            groups = []
            if size == 0:
                for vi in sorted(set(f[0] for f in frames)):
                    groups.append([i for i, f in enumerate(frames) if f[0] == vi])
            else:
                groups = [list(range(a, min(a + size, len(frames)))) for a in range(0, len(frames), size)]
            fs = [eval_fmeasure(probs[g], gts[g]) for g in groups]
            out[key] = {"miou": float(np.mean(ious)), "fscore": float(np.mean(fs)),
                        "dataset_iou": inter / union if union else 1.0,
                        "frames": len(frames), "groups": len(groups)}
        return out

    golden = {"thresholds_hex": [float(t).hex() for t in th],
              "sigmoid": [[float(x).hex(), float(p).hex()] for x, p in zip(special, sigmoid_f32(special))],
              "s4": evaluate(frames, None, {"video": 0, "5": 5, "20": 20}), "s4_class": {}, "s4_video": {}}
    for cat in sorted(set(v[0] for v in s4)):
        sub = [f for f in frames if s4[f[0]][0] == cat]
        golden["s4_class"][cat] = evaluate(sub, None, {"video": 0, "20": 20})
    for vi, v in enumerate(s4):
        golden["s4_video"][v[1]] = evaluate([f for f in frames if f[0] == vi], None, {"video": 0})["video"]

    # MS3: palette GT, predictions numbered from 0
    ms3_frames = []
    for vi, name in enumerate(["-0Ab_cd", "zz9"]):
        gdir = os.path.join(ROOT, "ms3", "gt", "test", name)
        pdir = os.path.join(ROOT, "ms3", "pred", name)
        os.makedirs(gdir)
        os.makedirs(pdir)
        for f in range(5):
            m = blob_mask(f == 1)
            im = Image.fromarray((m * 255).astype(np.uint8), "P")
            im.putpalette(gray_palette())
            im.save(os.path.join(gdir, f"{name}_{f + 1}.png"))
            v = np.clip(m * 100 + rng.integers(0, 156, (H, W)), 0, 255).astype(np.uint8)
            write_png_gray(os.path.join(pdir, f"{name}_{f}.png"), v)
            ms3_frames.append((vi, v.astype(np.float32) / np.float32(255), m.astype(np.float32)))
    golden["ms3"] = evaluate(ms3_frames, None, {"video": 0, "5": 5, "20": 20})

    # a 16-bit mask, which avs-eval must refuse with a clear message
    os.makedirs(os.path.join(ROOT, "bad"))
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(os.path.join(ROOT, "bad", "gray16.png"))

    with open(os.path.join(ROOT, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1, sort_keys=True)
    print("wrote", ROOT, "frames:", len(frames), "+", len(ms3_frames), "special logits:", special.size)


if __name__ == "__main__":
    main()
