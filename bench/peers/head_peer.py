"""bench/peers/head_peer.py: the PyTorch peer of `avs-model bench c3n_head`: the same training
step of the C3N head (forward, BCE + Dice over all frames, backward, Adam lr 1e-4) on random
data, Debian's torch on the CPU (oneDNN convolutions), float32, BatchNorm in train mode.

  /usr/bin/python3 bench/peers/head_peer.py [--videos 1] [--steps 5] [--size 224] [--threads 2]
      [--full-tpavi]

TPAVI runs in the same exact low-rank form as the C code unless --full-tpavi (the official
(THW)^2 matrix). Prints step_seconds=<median> peak_rss_mb=<ru_maxrss>."""
import argparse
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests', 'gen'))
import model_c3n_ref as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--videos', type=int, default=1)
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--size', type=int, default=224)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--full-tpavi', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = ref.C3NHead(lowrank=not a.full_tpavi)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    B, h0 = a.videos * 5, a.size // 4
    xs = [torch.randn(B, c, h0 >> s, h0 >> s) for s, c in enumerate((64, 128, 320, 512))]
    audio = torch.randn(a.videos, 5, 128)
    mask = (torch.rand(B, 1, 4 * h0, 4 * h0) > 0.66).float()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = ref.bce_dice(m(xs, audio), mask)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    times.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f'step_seconds={times[len(times) // 2]:.4f} peak_rss_mb={rss:.0f} loss={loss.item():.6f} '
          f'threads={a.threads} torch={torch.__version__}')


if __name__ == '__main__':
    main()
