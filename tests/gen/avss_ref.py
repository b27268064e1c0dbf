#!/usr/bin/python3
"""tests/gen/avss_ref.py: the reference for avs-eval --semantic and --protocol (Debian
python3-torch 1.13, numpy, PIL).

  avss_ref.py make DIR SEED [VIDEOS]   write a random AVSS case and the official numbers:
      DIR/release/metadata.csv, label2idx.json, <set>/<uid>/frames/<i>.jpg, labels_rgb/<i>.png
          (labels at assorted sizes, some with unknown colours, empty and absent classes)
      DIR/pred/<uid>/<uid>_<i>.{png,logits}  colour PNGs (some not 224x224), 8-bit class-index
          PNGs, 71-channel .logits; v1s/v1m padded predictions given for some videos only
      DIR/store/masks/<uid>/<k>.png        the labels as class indices (255 = unknown colour)
      DIR/expected.json                    {"official": {...}, "real": {...}} (--padded skip)
  avss_ref.py protocols GT PRED        the S4/MS3 protocols (official per video, per-frame,
                                       pooled) of an AVSBench tree, as JSON

The official AVSS metric is re-implemented from AVSBench avs_scripts/avss (color_dataloader.py:
10 frames per video, padded labels all background, colour -> class by palette equality with
unknown -> 0; compute_color_metrics.py _batch_miou_fscore: softmax, argmax, torch.histc over
bins 1..71; test.py: sums per batch of 4 videos, / count, NaN -> 0, mean over 71 classes).
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from PIL import Image

NC, T, S = 71, 10, 224


def palette(n=NC):
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


PAL = palette()


def colour_to_label(img):
    """ref color_mask_to_label: one equality map per palette colour, argmax (unknown -> 0)."""
    a = np.asarray(img).astype(np.int32)
    maps = np.stack([np.all(a == c, axis=-1) for c in PAL], axis=-1).astype(np.float32)
    return np.argmax(maps, axis=-1), int((maps.sum(-1) == 0).sum())


def load_label(path):
    img = Image.open(path).convert("RGB").resize((S, S), Image.NEAREST)
    return colour_to_label(img)


def batch_scores(output, target):
    """ref _batch_miou_fscore: output [BF, C, H, W] logits, target [BF, H, W]."""
    nclass = output.shape[1]
    pred = torch.argmax(torch.softmax(output, 1), 1) + 1
    target = target.float() + 1
    pred = pred.float() * (target > 0).float()
    inter = pred * (pred == target).float()
    ious, fs, cnt = torch.zeros(nclass), torch.zeros(nclass), torch.zeros(nclass)
    vid = []
    for i in range(target.shape[0]):
        ai = torch.histc(inter[i], bins=nclass, min=1, max=nclass)
        ap = torch.histc(pred[i], bins=nclass, min=1, max=nclass)
        al = torch.histc(target[i], bins=nclass, min=1, max=nclass)
        au = ap + al - ai
        iou = 1.0 * ai.float() / (2.220446049250313e-16 + au.float())
        ious += iou
        cnt[torch.nonzero(au).squeeze(-1)] += 1
        prec, rec = ai / ap, ai / al
        f = (1 + 0.3) * prec * rec / (0.3 * prec + rec)
        f[torch.isnan(f)] = 0.
        fs += f
        v = torch.sum(iou) / torch.sum(iou != 0).float()
        vid.append(0.0 if torch.isnan(v) else v.item())
        pooled = (ai, ap, al, au)
        yield_stats.append(pooled)
    return ious, fs, cnt, vid


yield_stats = []


def official(frames_by_video, batch=4):
    """frames_by_video: [(uid, [(logits [C,H,W] tensor, label [H,W] tensor, padded)])]."""
    miou_pc, fs_pc, cls_pc = torch.zeros(NC), torch.zeros(NC), torch.zeros(NC)
    vids = []
    yield_stats.clear()
    for a in range(0, len(frames_by_video), batch):
        chunk = frames_by_video[a:a + batch]
        out = [x for _, fr in chunk for x, _, _ in fr]
        lab = [y for _, fr in chunk for _, y, _ in fr]
        if not out:
            continue
        i, f, c, vid = batch_scores(torch.stack(out), torch.stack(lab))
        miou_pc += i
        fs_pc += f
        cls_pc += c
        k = 0
        for uid, fr in chunk:
            vids.append((uid, float(np.mean(vid[k:k + len(fr)])) if fr else 0.0))
            k += len(fr)
    iou = miou_pc / cls_pc
    iou[torch.isnan(iou)] = 0
    f = fs_pc / cls_pc
    f[torch.isnan(f)] = 0
    st = [torch.stack([s[j] for s in yield_stats]).double().sum(0) for j in range(4)]
    ai, ap, al, au = st
    piou = ai / au
    pprec, prec_rec = ai / ap, ai / al
    pf = 1.3 * pprec * prec_rec / (0.3 * pprec + prec_rec)
    pf[torch.isnan(pf)] = 0
    m = au > 0
    present = cls_pc > 0
    return {
        "miou": torch.mean(iou).item(), "fscore": torch.mean(f).item(),
        "no-bg": [iou[1:].double().mean().item(), f[1:].double().mean().item()],
        "official-no-bg": [torch.mean(iou[:-1]).item(), torch.mean(f[:-1]).item()],
        "present": [iou[present].double().mean().item(), f[present].double().mean().item()],
        "pooled": [piou[m].mean().item(), pf[m].mean().item()],
        "class_iou": iou.tolist(), "class_f": f.tolist(), "class_frames": cls_pc.tolist(),
        "videos": vids, "frames": sum(len(fr) for _, fr in frames_by_video),
    }


def write_logits(path, x):
    c, h, w = x.shape
    with open(path, "wb") as fh:
        fh.write(b"AVSLOGIT" + struct.pack("<6I", 1, 32, w, h, 1, c))
        fh.write(x.astype("<f4").tobytes())


def random_label(rng, h, w, classes):
    lab = np.zeros((h, w), np.int64)
    for _ in range(int(rng.integers(0, 4))):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        lab[y0:y0 + int(rng.integers(1, h)), x0:x0 + int(rng.integers(1, w))] = rng.choice(classes)
    return lab


def make(root, seed, videos=8):
    rng = np.random.default_rng(seed)
    rel, pdir, sdir = (os.path.join(root, d) for d in ("release", "pred", "store"))
    names = {"background": 0, **{f"cls_{k:02d}": k for k in range(1, NC)}}
    os.makedirs(rel, exist_ok=True)
    json.dump(names, open(os.path.join(rel, "label2idx.json"), "w"))
    classes = rng.choice(np.arange(1, NC), 6, replace=False).tolist() + [NC - 1]
    rows, vids, vids_real = [], [], []
    for v in range(videos):
        uid = f"u{seed}_{v}"
        aset = ["v1s", "v1m", "v2"][v % 3]
        real = 5 if aset != "v2" else 10
        rows.append(f"{v},{uid},test,{aset}")
        h, w = [(224, 224), (90, 160), (300, 448), (37, 50)][v % 4]
        vd = os.path.join(rel, aset, uid)
        for sub in ("frames", "labels_rgb"):
            os.makedirs(os.path.join(vd, sub), exist_ok=True)
        os.makedirs(os.path.join(pdir, uid), exist_ok=True)
        os.makedirs(os.path.join(sdir, "masks", uid), exist_ok=True)
        frames = []
        give_padded = v % 2 == 0
        for i in range(T):
            padded = i >= real
            if padded:
                label = torch.zeros(S, S, dtype=torch.long)
            else:
                lab = random_label(rng, h, w, classes)
                rgb = PAL[lab].astype(np.uint8)
                if rng.random() < 0.3:  # unknown colours
                    rgb[: h // 3, : w // 5] = (1, 2, 3)
                Image.fromarray(rgb).save(os.path.join(vd, "labels_rgb", f"{i}.png"))
                Image.new("RGB", (w, h), (90, 90, 90)).save(os.path.join(vd, "frames", f"{i}.jpg"))
                idx = lab.astype(np.uint8).copy()
                idx[np.all(rgb == (1, 2, 3), axis=-1)] = 255
                Image.fromarray(idx).save(os.path.join(sdir, "masks", uid, f"{i + 1}.png"))
                label = torch.from_numpy(load_label(os.path.join(vd, "labels_rgb", f"{i}.png"))[0])
            kind = int(rng.integers(0, 4))
            stem = os.path.join(pdir, uid, f"{uid}_{i}")
            if padded and not give_padded:
                x = np.zeros((NC, S, S), np.float32)
                x[0] = 1.0
            elif kind == 0:  # logits, with ties between class 0 and others sometimes
                x = rng.normal(0, 2, (NC, S, S)).astype(np.float32)
                x[classes[0], : S // 2] += 3.0
                x[1, :4] = x[0, :4]
                write_logits(stem + ".logits", x)
            else:
                pl = random_label(rng, S, S, classes + [0])
                if i % 3 == 0:
                    pl = label.numpy().copy()  # perfect frame
                    pl[:10, :10] = classes[1]
                if kind == 1:  # index PNG at 224
                    Image.fromarray(pl.astype(np.uint8)).save(stem + ".png")
                else:  # colour PNG, sometimes at another size (upsampled NEAREST, exact)
                    im = Image.fromarray(PAL[pl].astype(np.uint8))
                    if kind == 3:
                        im = im.resize((448, 448), Image.NEAREST)
                    im.save(stem + ".png")
                    pl = colour_to_label(Image.open(stem + ".png").convert("RGB")
                                         .resize((S, S), Image.NEAREST))[0]
                x = np.eye(NC, dtype=np.float32)[pl].transpose(2, 0, 1) * 5.0
            frames.append((torch.from_numpy(x), label, padded))
        vids.append((uid, frames))
        vids_real.append((uid, [f for f in frames if not f[2]]))
    with open(os.path.join(rel, "metadata.csv"), "w") as fh:
        fh.write("vid,uid,split,label\n" + "\n".join(rows) + "\n")
    unknown = sum(load_label(os.path.join(rel, a, u, "labels_rgb", p))[1]
                  for r in rows for _, u, _, a in [r.split(",")]
                  for p in os.listdir(os.path.join(rel, a, u, "labels_rgb")))
    exp = {"official": official(vids), "real": official(vids_real), "unknown_pixels": unknown}
    json.dump(exp, open(os.path.join(root, "expected.json"), "w"), indent=1)


def protocols(gt_root, pred_root):
    """S4 tree: per-frame and pooled (docs/avss.md) from the official per-frame quantities."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from eval_golden import eval_pr, mask_iou_frames, sigmoid_f32
    probs, gts = [], []
    for cat in sorted(os.listdir(gt_root)):
        for vid in sorted(os.listdir(os.path.join(gt_root, cat))):
            d = os.path.join(gt_root, cat, vid)
            for k in sorted(int(f[len(vid) + 1:-4]) for f in os.listdir(d) if f.endswith(".png")):
                gi = Image.open(os.path.join(d, f"{vid}_{k}.png"))
                if gi.mode == "RGB":  # ITU-R 601 luma, truncated (eval/png_index.c, DESIGN §4)
                    a = np.asarray(gi).astype(np.int64)
                    g = (299 * a[..., 0] + 587 * a[..., 1] + 114 * a[..., 2]) // 1000 >= 128
                else:
                    g = np.asarray(gi if gi.mode == "P" else gi.convert("L")) >= 128
                stem = os.path.join(pred_root, cat, vid, f"{vid}_{k}")
                if os.path.exists(stem + ".logits"):
                    raw = open(stem + ".logits", "rb").read()
                    w, h = struct.unpack("<2I", raw[16:24])
                    p = torch.from_numpy(sigmoid_f32(np.frombuffer(raw[32:], "<f4").reshape(h, w).copy()))
                else:
                    im = Image.open(stem + ".png")
                    a = np.asarray(im.convert("L") if im.mode != "P" else im, np.float32)
                    p = torch.from_numpy(a / np.float32(255))
                probs.append(p)
                gts.append(torch.from_numpy(g.astype(np.float32)))
    prob, gt = torch.stack(probs), torch.stack(gts)
    iou = mask_iou_frames(prob, gt)
    per, tp, ps = [], torch.zeros(255, dtype=torch.float64), torch.zeros(255, dtype=torch.float64)
    th = torch.linspace(0, 1 - 1e-10, 255)
    for i in range(prob.shape[0]):
        y = (prob[i][None] >= th[:, None, None])
        tp += (y & (gt[i][None] > 0)).sum((1, 2)).double()
        ps += y.sum((1, 2)).double()
        if gt[i].sum() > 0:
            pr, rc = eval_pr(prob[i], gt[i], 255)
            f = 1.3 * pr * rc / (0.3 * pr + rc)
            f[f != f] = 0
            per.append(f.max().item())
    gs = gt.sum().double()
    pr, rc = tp / (ps + 1e-20), tp / (gs + 1e-20)
    f = 1.3 * pr * rc / (0.3 * pr + rc)
    f[f != f] = 0
    pred = (prob > 0.5)
    inter = (pred & (gt > 0)).sum().item()
    union = (pred | (gt > 0)).sum().item()
    return {"per-frame": {"miou": iou.double().mean().item(), "fscore": float(np.mean(per))},
            "pooled": {"miou": inter / union, "fscore": f.max().item()}}


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 8)
    else:
        print(json.dumps(protocols(sys.argv[2], sys.argv[3])))
