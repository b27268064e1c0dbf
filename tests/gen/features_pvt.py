"""tests/gen/features_pvt.py: PyTorch reference of PVTv2 (the official pvt_v2.py structure and
parameter names, re-written here: patch_embed1..4, block1..4.<i>.{norm1,attn.{q,kv,sr,norm,proj},
norm2,mlp.{fc1,dwconv.dwconv,fc2}}, norm1..4, head) and the fixtures of tests/test_features_pvt.c.

Run from the repository root with Debian's torch:  /usr/bin/python3 tests/gen/features_pvt.py
Writes tests/fixtures/features/pvt_small.{weights,io}.safetensors: a reduced b0-like config
(dims 8,16,24,32; heads 1,2,3,4; mlp 2; depths 1,1,2,1; sr 8,4,2,1; 10 classes) on 2 random
64x64 images: io holds image [2,3,64,64], stage1..4 (after the stage norms, NCHW) and logits,
computed in float64 from the float32 weights, and gradcam1..4 [2,C_s] for target [3, 7]
(int64): the spatial mean of d logit / d (last block output of each stage). LayerNorm affine parameters are randomised so that
they are tested too. pvt_small.grads.safetensors: random upstream gradients dstage1..4 and dlogits
and the resulting grad.<name> of every parameter (fine-tuning backward).
Also importable: make(cfg) -> model, VARIANTS, and `python3 features_pvt.py b0 W IN EXPECT`
writes a fresh random full-size case (224x224, with IN.target holding target [417] and EXPECT
holding gradcam1..4 too; IN.dout with upstream gradients and EXPECT.grads with every
parameter's gradient) for tests/test_features_tool.sh; `python3 features_pvt.py bench b0 2`
times the PyTorch peer of `avs-model bench pvt_v2_b0` (see bench()).
"""
import os
import sys
from functools import partial

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402

VARIANTS = {
    'b0': dict(dims=(32, 64, 160, 256), heads=(1, 2, 5, 8), mlp=(8, 8, 4, 4), depths=(2, 2, 2, 2)),
    'b1': dict(dims=(64, 128, 320, 512), heads=(1, 2, 5, 8), mlp=(8, 8, 4, 4), depths=(2, 2, 2, 2)),
    'b2': dict(dims=(64, 128, 320, 512), heads=(1, 2, 5, 8), mlp=(8, 8, 4, 4), depths=(3, 4, 6, 3)),
}
SMALL = dict(dims=(8, 16, 24, 32), heads=(1, 2, 3, 4), mlp=(2, 2, 2, 2), depths=(1, 1, 2, 1), classes=10)


class DWConv(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x, H, W):
        B, N, C = x.shape
        return self.dwconv(x.transpose(1, 2).view(B, C, H, W)).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, H, W):
        return self.fc2(self.act(self.dwconv(self.fc1(x), H, W)))


class Attention(nn.Module):
    def __init__(self, dim, heads, sr):
        super().__init__()
        self.heads, self.scale, self.sr_ratio = heads, (dim // heads) ** -0.5, sr
        self.q = nn.Linear(dim, dim, bias=True)
        self.kv = nn.Linear(dim, dim * 2, bias=True)
        self.proj = nn.Linear(dim, dim)
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr, stride=sr)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x, H, W):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.heads, C // self.heads).permute(0, 2, 1, 3)
        if self.sr_ratio > 1:
            x_ = self.sr(x.permute(0, 2, 1).reshape(B, C, H, W)).reshape(B, C, -1).permute(0, 2, 1)
            x_ = self.norm(x_)
        else:
            x_ = x
        kv = self.kv(x_).reshape(B, -1, 2, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, sr, norm):
        super().__init__()
        self.norm1 = norm(dim)
        self.attn = Attention(dim, heads, sr)
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, H, W):
        x = x + self.attn(self.norm1(x), H, W)
        return x + self.mlp(self.norm2(x), H, W)


class OverlapPatchEmbed(nn.Module):
    def __init__(self, patch, stride, cin, dim):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, kernel_size=patch, stride=stride, padding=(patch // 2, patch // 2))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        _, _, H, W = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), H, W


class PVTv2(nn.Module):
    def __init__(self, dims, heads, mlp, depths, sr=(8, 4, 2, 1), classes=1000):
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-6)
        for i in range(4):
            setattr(self, f'patch_embed{i + 1}', OverlapPatchEmbed(7 if i == 0 else 3, 4 if i == 0 else 2,
                                                                   3 if i == 0 else dims[i - 1], dims[i]))
            setattr(self, f'block{i + 1}', nn.ModuleList([Block(dims[i], heads[i], mlp[i], sr[i], norm)
                                                          for _ in range(depths[i])]))
            setattr(self, f'norm{i + 1}', norm(dims[i]))
        self.head = nn.Linear(dims[3], classes)

    def forward(self, x):
        B, maps = x.shape[0], []
        self.last = []  # output of the last block of each stage (Grad-CAM hook points)
        for i in range(4):
            x, H, W = getattr(self, f'patch_embed{i + 1}')(x)
            for blk in getattr(self, f'block{i + 1}'):
                x = blk(x, H, W)
            if i == 0 and getattr(self, 'cut', False):  # bench: backward stops at stage 1
                x = x.detach().requires_grad_()
            if x.requires_grad:
                x.retain_grad()
            self.last.append(x)
            x = getattr(self, f'norm{i + 1}')(x)
            tokens = x
            x = x.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
            maps.append(x)
        return maps, self.head(tokens.mean(dim=1))


def make(cfg, seed):
    torch.manual_seed(seed)
    m = PVTv2(**cfg)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if 'norm' in name:  # LayerNorm affine: away from the 1/0 default, to test them
                p.add_(0.1 * torch.randn_like(p))
    return m.eval()


def run(model, x, target=None):
    """Forward in float64; with target [N]: Grad-CAM weights gradcam1..4 [N,C_s] = spatial mean
    of d logit[n, target[n]] / d (last block output of stage s)."""
    m64 = model.double()
    xin = torch.from_numpy(x).double().requires_grad_(target is not None)
    maps, logits = m64(xin)
    out = {f'stage{i + 1}': t.detach().float().numpy() for i, t in enumerate(maps)}
    out['logits'] = logits.detach().float().numpy()
    if target is not None:
        logits[torch.arange(len(target)), torch.as_tensor(target)].sum().backward()
        for i, t in enumerate(m64.last):
            out[f'gradcam{i + 1}'] = t.grad.mean(dim=1).float().numpy()
    model.float()
    model.zero_grad()
    return out


def param_grads(model, x, seed):
    """Random upstream gradients dstage1..4 / dlogits and every parameter's gradient (float64)."""
    m64 = model.double()
    for p in m64.parameters():
        p.requires_grad_(True)
        p.grad = None
    maps, logits = m64(torch.from_numpy(x).double())
    rng = np.random.default_rng(seed)
    up = {f'dstage{i + 1}': rng.standard_normal(t.shape).astype(np.float32) for i, t in enumerate(maps)}
    up['dlogits'] = rng.standard_normal(logits.shape).astype(np.float32)
    loss = sum((t * torch.from_numpy(up[f'dstage{i + 1}']).double()).sum() for i, t in enumerate(maps))
    loss = loss + (logits * torch.from_numpy(up['dlogits']).double()).sum()
    loss.backward()
    out = dict(up)
    for k, p in m64.named_parameters():
        out['grad.' + k] = p.grad.float().numpy()
    model.float()
    model.zero_grad()
    return out


def weights(model):
    return {k: v.float().numpy() for k, v in model.state_dict().items()}


def bench(variant, threads=2, size=224, runs=5):
    """PyTorch peer of `avs-model bench pvt_v2_X`: one image, forward (no_grad) and forward +
    Grad-CAM backward (parameters frozen, the graph cut after the stage-1 blocks, so autograd
    does the same work as the C code: blocks of stages 2-4, norms and patch embeddings)."""
    import time
    torch.set_num_threads(threads)
    m = make(VARIANTS[variant], 3)
    for p in m.parameters():
        p.requires_grad_(False)
    x = torch.randn(1, 3, size, size)
    tf = tg = 1e30
    for r in range(runs + 1):
        t0 = time.perf_counter()
        with torch.no_grad():
            m(x)
        t1 = time.perf_counter()
        m.cut = True
        _, logits = m(x)
        logits[0, 0].backward()
        g = [t.grad.mean(dim=1) for t in m.last]
        m.cut = False
        t2 = time.perf_counter()
        if r:
            tf, tg = min(tf, t1 - t0), min(tg, t2 - t1)
    assert len(g) == 4
    print(f'torch_fwd_seconds={tf:.4f} torch_gradcam_seconds={tg:.4f} size={size} threads={threads}')


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == 'bench':  # bench VARIANT [THREADS]
        bench(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2)
        return
    if len(sys.argv) == 5:  # fresh full-size case: VARIANT WEIGHTS INPUTS EXPECT
        m = make(VARIANTS[sys.argv[1]], 3)
        x = np.random.default_rng(4).standard_normal((1, 3, 224, 224)).astype(np.float32)
        model_st.save(sys.argv[2], weights(m))
        model_st.save(sys.argv[3], {'image': x})
        model_st.save(sys.argv[3] + '.target', {'target': np.array([417], np.int64)})
        model_st.save(sys.argv[4], run(m, x, [417]))
        g = param_grads(m, x, 5)
        model_st.save(sys.argv[3] + '.dout', {k: v for k, v in g.items() if not k.startswith('grad.')})
        model_st.save(sys.argv[4] + '.grads', {k: v for k, v in g.items() if k.startswith('grad.')})
        return
    m = make(SMALL, 9)
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64)).astype(np.float32)
    F = 'tests/fixtures/features/pvt_small.'
    model_st.save(F + 'weights.safetensors', weights(m), {'generator': 'tests/gen/features_pvt.py'})
    io = run(m, x, [3, 7])
    io['image'] = x
    io['target'] = np.array([3, 7], np.int64)
    model_st.save(F + 'io.safetensors', io, {'torch': torch.__version__})
    model_st.save(F + 'grads.safetensors', param_grads(m, x, 12), {'torch': torch.__version__})


if __name__ == '__main__':
    main()
