"""tests/gen/train_jitter.py: reference outputs of torchvision's ColorJitter ops for
tests/test_finetune.c (train/finetune.c: avs_jitter_apply).

Run with Debian's Python and torchvision (apt-get install python3-torchvision, 0.14):
    /usr/bin/python3 tests/gen/train_jitter.py tests/fixtures/train/jitter.safetensors
Writes a float RGB image "input" [3,H,W] in [0,1] (random values plus edge pixels: black,
white, grays, pure and saturated colours, ties between channels) and for each case i
"params<i>" [4] = brightness, contrast, saturation, hue factors, "order<i>" [4] (0 brightness,
1 contrast, 2 saturation, 3 hue; a factor of -1 means the op is skipped) and "output<i>" [3,H,W]:
the torchvision.transforms.functional tensor ops applied in that order, as ColorJitter.forward
does with its sampled factors.
"""
import os
import sys

import numpy as np
import torch
import torchvision.transforms.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402


def image():
    rng = np.random.default_rng(7)
    H, W = 6, 8
    img = rng.random((3, H, W), dtype=np.float32)
    edge = [(0, 0, 0), (1, 1, 1), (0.5, 0.5, 0.5), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0),
            (0, 1, 1), (1, 0, 1), (0.2, 0.2, 0.9), (0.9, 0.9, 0.2), (0.3, 0.7, 0.7),
            (0.7, 0.3, 0.7), (0.7, 0.7, 0.3), (0.6, 0.2, 0.2), (0.1, 0.4, 0.1)]
    for i, c in enumerate(edge):
        img[:, i // W, i % W] = c
    # values that came from uint8 (what the store gives)
    img[:, 3:, :] = np.round(img[:, 3:, :] * 255) / 255
    return img.astype(np.float32)


def apply(img, params, order):
    x = torch.from_numpy(img.copy())
    for op in order:
        f = float(params[op])
        if op == 0:
            x = F.adjust_brightness(x, f)
        elif op == 1:
            x = F.adjust_contrast(x, f)
        elif op == 2:
            x = F.adjust_saturation(x, f)
        else:
            x = F.adjust_hue(x, f)
    return x.numpy()


def main():
    out = sys.argv[1]
    img = image()
    cases = [
        ([1.3, 1, 1, 0], [0]),
        ([0.7, 1, 1, 0], [0]),
        ([1, 1.35, 1, 0], [1]),
        ([1, 0.62, 1, 0], [1]),
        ([1, 1, 1.4, 0], [2]),
        ([1, 1, 0.6, 0], [2]),
        ([1, 1, 1, 0.07], [3]),
        ([1, 1, 1, -0.093], [3]),
        ([1, 1, 1, 0.1], [3]),
        ([1.21, 0.77, 1.33, -0.04], [3, 1, 0, 2]),
        ([0.66, 1.38, 0.71, 0.085], [2, 0, 3, 1]),
        ([1.05, 0.93, 1.12, 0.013], [0, 1, 2, 3]),
    ]
    t = {'input': img}
    for i, (p, order) in enumerate(cases):
        p = np.array(p, dtype=np.float32)
        t['params%d' % i] = p
        t['order%d' % i] = np.array(order + [-1] * (4 - len(order)), dtype=np.float32)
        t['output%d' % i] = apply(img, p, order)
    model_st.save(out, t, {'cases': len(cases), 'torchvision': __import__('torchvision').__version__})


if __name__ == '__main__':
    torch.set_num_threads(1)
    main()
