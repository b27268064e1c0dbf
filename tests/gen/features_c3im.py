"""tests/gen/features_c3im.py: PyTorch reference of C3IM (DESIGN §6) and the fixture of
tests/test_model_c3im.c / tests/test_features_tool.sh.

Run from the repository root with Debian's torch:  /usr/bin/python3 tests/gen/features_c3im.py
Writes tests/fixtures/features/c3im.safetensors with
  vlogits [N,V], alogits [N,A], sim [V,A]  (float32 inputs; small V=40, A=24 so the file stays
                                           small: the C code takes any sizes)
  target [N], target_v [N]                 (int64, the official rule: first maximum)
  wmax [N]                                 (float32, the maximum of W)      at alpha = beta = 0.1
  ab [K,2]                                 (F64: (alpha, beta) of K other exponent pairs)
  targets [K,N], wmaxes [K,N]              (int64, float32: the same at each pair)
  wmax64 [K+1,N]                           (F64: the maximum of W recomputed in float64, row 0
                                            at 0.1/0.1, then the K pairs; the yardstick is
                                            PyTorch float32's own distance to it)
Frames: random logits at three temperatures, a frame with constant logits (W = c*S, so the
first of two equal maxima of S decides), a frame whose visual logits tie at their maximum.
The pairs include the exponents PyTorch computes specially (0.5: sqrt; 2, 3: products) and
ones that move the consensus class of some frames (asserted below).
Also importable: c3im(vlogits, alogits, sim, alpha=0.1, beta=0.1) -> (target, target_v, wmax).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402

PAIRS = [(0.05, 0.2), (0.2, 0.05), (0.5, 0.5), (1.0, 1.0), (2.0, 0.1), (0.1, 3.0), (0.3, 1.5)]


def c3im(vl, al, sim, alpha=0.1, beta=0.1):
    """C3IM as the official semantic_sim (AVS-C3N model/utils.py) computes it, with the paper's
    two balance exponents: Pv = softmax^alpha (visual), Pa = softmax^beta (audio),
    W = (Pa * S) * Pv in that order, target = row of the first maximum in row-major order."""
    vl, al, sim = torch.as_tensor(vl), torch.as_tensor(al), torch.as_tensor(sim)
    pv = torch.softmax(vl, -1) ** alpha
    pa = torch.softmax(al, -1) ** beta
    w = pa[:, None, :] * sim[None] * pv[:, :, None]
    flat = w.reshape(w.shape[0], -1)
    return (torch.argmax(flat, -1) // sim.shape[1]).numpy(), torch.argmax(vl, -1).numpy(), flat.max(-1).values.numpy()


def wmax64(vl, al, sim, alpha, beta):
    """The maximum of W in float64 (the exact value float32 approximates)."""
    vl, al, sim = (torch.as_tensor(x).double() for x in (vl, al, sim))
    w = (torch.softmax(al, -1) ** beta)[:, None, :] * sim[None] * (torch.softmax(vl, -1) ** alpha)[:, :, None]
    return w.reshape(w.shape[0], -1).max(-1).values.numpy()


def main():
    rng = np.random.default_rng(6)
    N, V, A = 8, 40, 24
    vl = (rng.standard_normal((N, V)) * np.array([1, 3, 8, 1, 3, 8, 1, 1])[:, None]).astype(np.float32)
    al = (rng.standard_normal((N, A)) * np.array([1, 3, 8, 8, 3, 1, 1, 1])[:, None]).astype(np.float32)
    sim = rng.uniform(-1, 0.9, (V, A)).astype(np.float32)
    sim[3, 5] = sim[7, 2] = 1.0   # two equal maxima: the first in row-major order wins
    vl[6] = 0.5
    al[6] = -1.0                  # constant logits: W = c * S
    vl[7, 11] = vl[7, 30] = vl[7].max() + 2.0  # tie at the visual maximum
    t, tv, wm = c3im(vl, al, sim)
    assert t[6] == 3 and tv[7] == 11, (t, tv)
    ts, ws = [], []
    for a, b in PAIRS:
        ta, tva, wa = c3im(vl, al, sim, a, b)
        assert (tva == tv).all() and ta[6] == 3, (a, b, ta)
        ts.append(ta), ws.append(wa)
    moved = sum(int((x != t).any()) for x in ts)
    assert moved >= 4, f'only {moved} exponent pairs move a consensus class: the fixture tests too little'
    w64 = np.stack([wmax64(vl, al, sim, a, b) for a, b in [(0.1, 0.1)] + PAIRS])
    model_st.save('tests/fixtures/features/c3im.safetensors',
                  {'vlogits': vl, 'alogits': al, 'sim': sim, 'target': t.astype(np.int64),
                   'target_v': tv.astype(np.int64), 'wmax': wm.astype(np.float32),
                   'ab': np.array(PAIRS, np.float64), 'targets': np.stack(ts).astype(np.int64),
                   'wmaxes': np.stack(ws).astype(np.float32), 'wmax64': w64},
                  {'generator': 'tests/gen/features_c3im.py', 'torch': torch.__version__},
                  keep_f64=('ab', 'wmax64'))
    print('targets at 0.1/0.1:', list(t))
    for (a, b), x in zip(PAIRS, ts):
        print(f'targets at {a}/{b}:', list(x))


if __name__ == '__main__':
    main()
