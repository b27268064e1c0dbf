"""bench/peers/gpu_peer.py: the PyTorch peers of bench/gpu.sh, on the device's GPU (PyTorch 2.x
with CUDA, eager, cuDNN benchmark mode on), one workload per call:

  python3 bench/peers/gpu_peer.py head     [--videos 4] [--precision fp32|tf32|bf16] [--steps 10]
  python3 bench/peers/gpu_peer.py finetune [--videos 4] [--precision fp32|tf32] [--steps 5]
  python3 bench/peers/gpu_peer.py pvt      [--batch 64] [--precision fp32|tf32] [--steps 10]

head: one training step of the C3N head (width 256, PVTv2-b5 stage shapes at 224x224, BCE +
Dice, Adam lr 1e-4), TPAVI as the official code builds it ((T*H*W)^2 matrix) unless --lowrank.
finetune: PVTv2-b5 forward, C3IM target, Grad-CAM by autograd, CCAM, the head, BCE + Dice, one
backward through head and backbone, Adam (bench/peers/finetune_peer.py's step, on the GPU).
pvt: PVTv2-b5 forward of a batch (feature extraction, no grad).
Precisions: fp32 (TF32 off everywhere), tf32 (cuBLAS and cuDNN TF32 on), bf16 (autocast to
bfloat16 around forward and loss; parameters and Adam in fp32). Prints
step_seconds=<median after 2 warm-ups> peak_mb=<max allocated> and the versions."""
import argparse
import os
import sys
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', '..', 'tests', 'gen'))
import features_pvt  # noqa: E402
import model_c3n_ref as ref  # noqa: E402


def set_precision(p):
    tf32 = p == 'tf32'
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True


def autocast(p):
    return torch.autocast('cuda', dtype=torch.bfloat16, enabled=p == 'bf16')


def ccam(x, w):
    s = torch.sigmoid(w / w.norm(dim=1, keepdim=True).clamp_min(1e-12))
    x1 = x * s[:, :, None, None]
    return x1 * torch.sigmoid(x1.mean(dim=1, keepdim=True))


def c3im(vl, al, sim):
    """Official C3IM (tests/gen/features_c3im.py), on the GPU: the first maximum of
    softmax(vl)^0.1 * S * softmax(al)^0.1 gives the target class."""
    w = (torch.softmax(vl, -1) ** 0.1)[:, :, None] * sim[None] * (torch.softmax(al, -1) ** 0.1)[:, None, :]
    return torch.argmax(w.reshape(w.shape[0], -1), -1) // sim.shape[1]


def timed(fn, steps):
    times = []
    for i in range(steps + 2):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def head(a, dev):
    m = ref.C3NHead(lowrank=a.lowrank).to(dev).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    B, h0 = a.videos * 5, 56
    xs = [torch.randn(B, c, h0 >> s, h0 >> s, device=dev) for s, c in enumerate((64, 128, 320, 512))]
    audio = torch.randn(a.videos, 5, 128, device=dev)
    mask = (torch.rand(B, 1, 224, 224, device=dev) > 0.66).float()

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast(a.precision):
            loss = ref.bce_dice(m(xs, audio).float(), mask)
        loss.backward()
        opt.step()
    return timed(step, a.steps)


def finetune(a, dev):
    cfg = features_pvt.VARIANTS['b5']
    pvt = features_pvt.make(cfg, 1).to(dev).train()
    hd = ref.C3NHead(chans=cfg['dims'], lowrank=a.lowrank).to(dev).train()
    opt = torch.optim.Adam(list(pvt.parameters()) + list(hd.parameters()), lr=1e-4)
    B = a.videos * 5
    frames = torch.rand(B, 3, 224, 224, device=dev)
    audio = torch.randn(a.videos, 5, 128, device=dev)
    alogits, sim = torch.randn(B, 527, device=dev), torch.rand(1000, 527, device=dev) * 2 - 1
    mask = (torch.rand(B, 1, 224, 224, device=dev) > 0.66).float()

    def step():
        with autocast(a.precision):
            maps, logits = pvt(frames)
            target = c3im(logits.detach().float(), alogits, sim)
            picked = logits[torch.arange(B, device=dev), target].sum()
            grads = torch.autograd.grad(picked, pvt.last, retain_graph=True)
            weights = [g.mean(dim=1).detach() for g in grads]
            out = hd([ccam(mp, w) for mp, w in zip(maps, weights)], audio)
            loss = ref.bce_dice(out.float(), mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return timed(step, a.steps)


def pvt_forward(a, dev):
    pvt = features_pvt.make(features_pvt.VARIANTS['b5'], 1).to(dev).eval()
    x = torch.rand(a.batch, 3, 224, 224, device=dev)

    def step():
        with torch.no_grad(), autocast(a.precision):
            pvt(x)
    return timed(step, a.steps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('what', choices=('head', 'finetune', 'pvt'))
    ap.add_argument('--videos', type=int, default=4)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--precision', choices=('fp32', 'tf32', 'bf16'), default='fp32')
    ap.add_argument('--lowrank', action='store_true')
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print('SKIP: no CUDA device for the PyTorch peer')
        return
    dev = torch.device('cuda:0')
    set_precision(a.precision)
    torch.manual_seed(0)
    torch.cuda.reset_peak_memory_stats()
    t = {'head': head, 'finetune': finetune, 'pvt': pvt_forward}[a.what](a, dev)
    peak = torch.cuda.max_memory_allocated() / 2**20
    print(f'step_seconds={t:.4f} peak_mb={peak:.0f} precision={a.precision} '
          f'gpu="{torch.cuda.get_device_name(0)}" torch={torch.__version__}')


if __name__ == '__main__':
    main()
