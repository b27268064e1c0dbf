"""tests/gen/features_c3im.py: PyTorch reference of C3IM (DESIGN §6) and the fixture of
tests/test_features_c3im.c / tests/test_features_tool.sh.

Run from the repository root with Debian's torch:  /usr/bin/python3 tests/gen/features_c3im.py
Writes tests/fixtures/features/c3im.safetensors with
  vlogits [N,V], alogits [N,A], sim [V,A]  (float32 inputs; small V=40, A=24 so the file stays
                                           small: the C code takes any sizes)
  target [N], target_v [N]                 (int64, torch.argmax: first maximum)
  wmax [N]                                 (float32, the maximum of W)
Frames: random logits at three temperatures, a frame with constant logits (W = c*S, so the
first of two equal maxima of S decides), a frame whose visual logits tie at their maximum.
Also importable: c3im(vlogits, alogits, sim) -> (target, target_v, wmax) for other tests.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402


def c3im(vl, al, sim):
    """Official C3IM: Pv = softmax^0.1, Pa = softmax^0.1, W = Pv * S * Pa, first max."""
    vl, al, sim = torch.as_tensor(vl), torch.as_tensor(al), torch.as_tensor(sim)
    pv = torch.softmax(vl, -1) ** 0.1
    pa = torch.softmax(al, -1) ** 0.1
    w = pv[:, :, None] * sim[None] * pa[:, None, :]
    flat = w.reshape(w.shape[0], -1)
    return (torch.argmax(flat, -1) // sim.shape[1]).numpy(), torch.argmax(vl, -1).numpy(), flat.max(-1).values.numpy()


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
    model_st.save('tests/fixtures/features/c3im.safetensors',
                  {'vlogits': vl, 'alogits': al, 'sim': sim, 'target': t.astype(np.int64),
                   'target_v': tv.astype(np.int64), 'wmax': wm.astype(np.float32)},
                  {'generator': 'tests/gen/features_c3im.py', 'torch': torch.__version__})


if __name__ == '__main__':
    main()
