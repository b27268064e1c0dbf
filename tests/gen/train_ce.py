"""tests/gen/train_ce.py: PyTorch reference values for the backend's pixel-wise cross-entropy
(backend/ops.h softmax_ce, the AVSS loss: nn.CrossEntropyLoss over classes per pixel, mean over
the pixels), written to tests/fixtures/train/ce.safetensors (read by tests/test_backend_ce.c).

  /usr/bin/python3 tests/gen/train_ce.py [--out tests/fixtures/train/ce.safetensors]

Per case <c>: inputs <c>.x [B,C,n] (float32 logits), <c>.lab [B,n] (class indices as float32;
255 = AVSS's unknown colour, which the official loader makes class 0, so the reference maps it
to 0), <c>.scale; outputs <c>.loss64, <c>.dx64 (float64: the yardstick) and <c>.loss32,
<c>.dx32 (PyTorch float32: the spread float32 code is allowed), dx = d(scale * loss)/dx."""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st as st  # noqa: E402

CASES = {  # name: B, C, n, logit spread
    'small': (2, 5, 37, 3.0),
    'avss': (3, 71, 300, 4.0),
    'wide': (1, 3, 1029, 30.0),
}


def ref(x, lab, scale, dtype):
    x = x.to(dtype).clone().requires_grad_(True)
    tgt = lab.long().clone()
    tgt[(tgt < 0) | (tgt >= x.shape[1])] = 0
    loss = F.cross_entropy(x, tgt, reduction='mean')
    (loss * scale).backward()
    return loss.detach(), x.grad.detach()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default='tests/fixtures/train/ce.safetensors')
    a = ap.parse_args()
    torch.manual_seed(14)
    out = {}
    for name, (B, C, n, spread) in CASES.items():
        x = (torch.randn(B, C, n) * spread).float()
        lab = torch.randint(0, C, (B, n)).float()
        lab[torch.rand(B, n) < 0.05] = 255.0
        scale = 0.75
        l64, d64 = ref(x, lab, scale, torch.float64)
        l32, d32 = ref(x, lab, scale, torch.float32)
        out[f'{name}.x'] = x.numpy()
        out[f'{name}.lab'] = lab.numpy()
        out[f'{name}.scale'] = torch.tensor([scale]).numpy()
        out[f'{name}.loss64'] = l64.reshape(1).numpy()  # saved as float32
        out[f'{name}.dx64'] = d64.numpy()
        out[f'{name}.loss32'] = l32.reshape(1).numpy()
        out[f'{name}.dx32'] = d32.numpy()
    st.save(a.out, out)


if __name__ == '__main__':
    main()
