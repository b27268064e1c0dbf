"""bench/peers/finetune_peer.py: the PyTorch peer of bench/finetune.sh: one `avs-train --mode
finetune` step as PyTorch code would do it: PVTv2-b0 (random init) + the official-width C3N head
(AF,CC: TPAVI on every stage in the exact low-rank form, CCAM), 1 video x 5 frames of
SIDE x SIDE, float32 on the CPU, Adam on backbone and head.

  /usr/bin/python3 bench/peers/finetune_peer.py [--size 224] [--steps 3] [--threads 2]

Per step: colour jitter per frame (torchvision ColorJitter(0.4, 0.4, 0.4, 0.1)) and the ImageNet
normalisation; one backbone forward; C3IM on its logits (random AudioSet logits and label
similarity); Grad-CAM weights by autograd on the target logits (spatial mean of the gradient at
each stage's last block output; detached: constants of the step, as in the official code and in
ours); CCAM; the head; BCE + Dice; one backward through head and backbone; Adam. The frames are
random tensors (our side decodes PNG files: slightly more work). Prints the median over the steps
after one warm-up: batch_s (jitter, forward, C3IM, Grad-CAM), rest_s (CCAM, head, loss,
backward, Adam) and step_s."""
import argparse
import os
import sys
import time

import torch
import torchvision.transforms as T

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', '..', 'tests', 'gen'))
import features_c3im  # noqa: E402
import features_pvt  # noqa: E402
import model_c3n_ref as ref  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def ccam(x, w):
    """DESIGN 6: s = sigmoid(w / max(||w||, 1e-12)); x1 = x s; out = x1 sigmoid(mean_c x1)."""
    s = torch.sigmoid(w / w.norm(dim=1, keepdim=True).clamp_min(1e-12))
    x1 = x * s[:, :, None, None]
    return x1 * torch.sigmoid(x1.mean(dim=1, keepdim=True))


def step(pvt, head, opt, jitter, a, audio, alogits, sim, mask):
    t0 = time.perf_counter()
    frames = torch.stack([jitter(f) for f in torch.rand(5, 3, a.size, a.size)])
    maps, logits = pvt((frames - MEAN) / STD)
    target, _, _ = features_c3im.c3im(logits.detach(), alogits, sim)
    picked = logits[torch.arange(5), torch.as_tensor(target)].sum()
    grads = torch.autograd.grad(picked, pvt.last, retain_graph=True)
    weights = [g.mean(dim=1).detach() for g in grads]
    t1 = time.perf_counter()
    out = head([ccam(m, w) for m, w in zip(maps, weights)], audio)
    loss = ref.bce_dice(out, mask)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return t1 - t0, time.perf_counter() - t1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--size', type=int, default=224)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = features_pvt.VARIANTS['b0']
    pvt = features_pvt.make(cfg, 1).train()
    head = ref.C3NHead(chans=cfg['dims'], lowrank=True).train()
    opt = torch.optim.Adam(list(pvt.parameters()) + list(head.parameters()), lr=1e-4)
    jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
    audio = torch.randn(1, 5, 128)
    alogits, sim = torch.randn(5, 527), torch.rand(1000, 527) * 2 - 1
    mask = (torch.rand(5, 1, a.size, a.size) > 0.66).float()
    times = [step(pvt, head, opt, jitter, a, audio, alogits, sim, mask) for _ in range(a.steps + 1)][1:]
    med = sorted(times, key=sum)[len(times) // 2]
    print(f'side={a.size} threads={a.threads} steps={a.steps} torch_batch_s={med[0]:.3f} '
          f'torch_rest_s={med[1]:.3f} torch_step_s={sum(med):.3f} torch={torch.__version__}')


if __name__ == '__main__':
    main()
