"""tests/gen/audiohead_attention.py: fixtures of tests/test_model_audioset_head.c.

Kong et al.'s FeatureLevelSingleAttention (qiuqiangkong/audioset_classification pytorch/main.py:
EmbeddingLayers, Attention with a sigmoid `att` clamped to [1e-7, 1-1e-7] and a linear `cla`,
bn_attention, fc_final, sigmoid, binary cross-entropy) re-stated here at reduced widths, with the
official parameter names. Fresh random weights (Kong's init_layer scale, BatchNorm affine and
running statistics randomised too so that every term shows), dropout 0 (its masks are the
backend's own, tested in test_backend_attpool.c). Computed in float64 (the reference) and in
float32 (PyTorch's own distance from float64 is the test's yardstick). A second case runs with
dropout 0.5 and the backend's masks, re-computed here from their counter hash (backend/ops.h
dropout_fwd: splitmix64 of (seed, index), the layers' seeds 8 seed + layer).

usage: audiohead_attention.py OUTDIR  ->  OUTDIR/audiohead_attention.{weights,io}.safetensors
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402

D, H, K, N, T = 8, 6, 5, 3, 4
EPS_ATT = 1e-7
DROP_SEED = 5


def weights(g):
    def uni(shape, fan_in):
        s = math.sqrt(2.0 / fan_in) * math.sqrt(3.0)
        return (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * s

    def rnd(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)

    w = {}
    w['emb.conv1.weight'] = uni((H, D, 1, 1), D)
    w['emb.conv2.weight'] = uni((H, H, 1, 1), H)
    w['emb.conv3.weight'] = uni((H, H, 1, 1), H)
    for b, c in (('emb.bn0', D), ('emb.bn1', H), ('emb.bn2', H), ('emb.bn3', H), ('bn_attention', H)):
        w[b + '.weight'] = rnd((c,), 0.5, 1.5)
        w[b + '.bias'] = rnd((c,), -0.3, 0.3)
        w[b + '.running_mean'] = rnd((c,), -0.2, 0.2)
        w[b + '.running_var'] = rnd((c,), 0.5, 1.5)
    for n in ('att', 'cla'):
        w['attention.%s.weight' % n] = uni((H, H, 1, 1), H)
        w['attention.%s.bias' % n] = rnd((H,), -0.2, 0.2)
    w['fc_final.weight'] = uni((K, H), H)
    w['fc_final.bias'] = rnd((K,), -0.2, 0.2)
    # the file holds float32: the reference starts from exactly those values
    return {k: v.float().double() for k, v in w.items()}


def bn(x, w, pre, train):
    """BatchNorm over dim 1 (BatchNorm1d/2d), eps 1e-5, momentum 0.1 (running stats updated)."""
    rm, rv = w[pre + '.running_mean'].clone(), w[pre + '.running_var'].clone()
    y = F.batch_norm(x, rm, rv, w[pre + '.weight'], w[pre + '.bias'], training=train,
                     momentum=0.1, eps=1e-5)
    return y, rm, rv


def unit(seed, n):
    """the backend's dropout uniforms u[i], i < n, for one seed (float32-exact: 24 bits)"""
    M = (1 << 64) - 1
    out = np.empty(n, np.float32)
    for i in range(n):
        z = (seed * 0x9e3779b97f4a7c15 + i + 1) & M
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
        z ^= z >> 31
        out[i] = (z >> 40) / 16777216.0
    return out


def masks(seed, p):
    """the masks of avs_ash_fwd(..., seed): hidden layers [R,H] as (N,H,T,1), the head's [N,H]"""
    keep = np.float32(1) / (np.float32(1) - np.float32(p))
    mk = lambda s, n: torch.from_numpy(np.where(unit(s, n) < np.float32(p), 0, keep).astype(np.float64))
    hid = [mk(seed * 8 + l, N * T * H).reshape(N, T, H).permute(0, 2, 1)[:, :, :, None] for l in range(3)]
    return hid + [mk(seed * 8 + 3, N * H).reshape(N, H)]


def forward(w, x, train, drop=None):
    """x [N,T,D] -> logits [N,K] (and the running statistics after the pass); drop: the masks
    of the three hidden layers and of the head (F.dropout's, drawn by the backend)"""
    stats = {}
    a = x.transpose(1, 2)[:, :, :, None]                # (N, D, T, 1), as EmbeddingLayers
    a, *stats['emb.bn0'] = bn(a, w, 'emb.bn0', train)
    for l in (1, 2, 3):
        a = F.conv2d(a, w['emb.conv%d.weight' % l])
        a, *stats['emb.bn%d' % l] = bn(a, w, 'emb.bn%d' % l, train)
        a = F.relu(a)
        if drop is not None:
            a = a * drop[l - 1].to(a.dtype)
    att = torch.sigmoid(F.conv2d(a, w['attention.att.weight'], w['attention.att.bias']))[:, :, :, 0]
    cla = F.conv2d(a, w['attention.cla.weight'], w['attention.cla.bias'])[:, :, :, 0]  # linear
    att = torch.clamp(att, EPS_ATT, 1.0 - EPS_ATT)
    b = torch.sum(att / torch.sum(att, dim=2)[:, :, None] * cla, dim=2)
    b, *stats['bn_attention'] = bn(b, w, 'bn_attention', train)
    b = F.relu(b)
    if drop is not None:
        b = b * drop[3].to(b.dtype)
    return F.linear(b, w['fc_final.weight'], w['fc_final.bias']), stats


def run(w, x, y, dtype, drop=None):
    p = {k: v.to(dtype).clone().requires_grad_(not k.endswith(('running_mean', 'running_var')))
         for k, v in w.items()}
    z, stats = forward(p, x.to(dtype), True, drop)
    loss = F.binary_cross_entropy(torch.sigmoid(z), y.to(dtype))
    loss.backward()
    grads = {k: v.grad.double() for k, v in p.items() if v.grad is not None}
    with torch.no_grad():
        ze, _ = forward(p, x.to(dtype), False)
    return z.detach().double(), loss.detach().double(), grads, stats, ze.double()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(20181116)
    w = weights(g)
    x = torch.randn((N, T, D), generator=g, dtype=torch.float64).float().double()
    y = (torch.rand((N, K), generator=g) < 0.4).double()
    z64, l64, g64, s64, e64 = run(w, x, y, torch.float64)
    z32, l32, g32, _, e32 = run(w, x, y, torch.float32)
    io = {'x': x.reshape(N * T, D).numpy(), 'y': y.numpy(), 'z64': z64.numpy(),
          'loss64': l64.reshape(1).numpy(), 'z_eval64': e64.numpy(),
          'z_d32': np.array([(z32 - z64).abs().max().item()]),
          'loss_d32': np.array([(l32 - l64).abs().item()]),
          'z_eval_d32': np.array([(e32 - e64).abs().max().item()])}
    for k, v in g64.items():
        io['grad.' + k] = v.numpy()
        io['grad_d32.' + k] = np.array([(g32[k] - v).abs().max().item()])
    for b, (rm, rv) in s64.items():
        io['after.%s.running_mean' % b] = rm.numpy()
        io['after.%s.running_var' % b] = rv.numpy()
    dm = masks(DROP_SEED, 0.5)
    z64, l64, g64, _, _ = run(w, x, y, torch.float64, dm)
    z32, l32, g32, _, _ = run(w, x, y, torch.float32, dm)
    io.update({'drop.z64': z64.numpy(), 'drop.loss64': l64.reshape(1).numpy(),
               'drop.z_d32': np.array([(z32 - z64).abs().max().item()]),
               'drop.loss_d32': np.array([(l32 - l64).abs().item()])})
    for k, v in g64.items():
        io['drop.grad.' + k] = v.numpy()
        io['drop.grad_d32.' + k] = np.array([(g32[k] - v).abs().max().item()])
    model_st.save(os.path.join(out, 'audiohead_attention.weights.safetensors'),
                  {k: v.numpy() for k, v in w.items()})
    model_st.save(os.path.join(out, 'audiohead_attention.io.safetensors'), io)


if __name__ == '__main__':
    main()
