"""tests/gen/model_swin.py: Swin Transformer fixtures from torchvision's swin implementation
(Debian's torchvision 0.14: the same network as the official microsoft/Swin-Transformer
release, other parameter names), renamed mechanically to the official names
(patch_embed.proj/norm, layers.S.blocks.I.{norm1,attn.qkv,attn.proj,
attn.relative_position_bias_table,norm2,mlp.fc1,mlp.fc2}, layers.S.downsample.{reduction,norm},
norm, head). relative_position_index is left out (recomputed, as the official loader does).

Run from the repository root with Debian's torch:  /usr/bin/python3 tests/gen/model_swin.py
Writes tests/fixtures/model/swin_small.{weights,io,grads}.safetensors: a reduced config (embed 8,
depths 2,2,4,2, heads 1,2,2,4, window 2, 10 classes) on 2 images of 64x64 (stage sides
16, 8, 4, 2: shifted windows in stages 1-3, one unshifted window in stage 4), with:
  image, target           the input and Grad-CAM classes
  stage1..4, logits       float64 forward (stage maps NCHW: the last block output of each stage)
  gradcam1..4             spatial mean of d logit[n, target[n]] / d stage map (float64)
  t32.<name>              the same computed by PyTorch in float32 (the yardstick: ours must be
                          within max(1e-4, 3x) PyTorch float32's relative L2 distance from float64)
  (grads) dstage1..4, dlogits: random upstream gradients; grad.<name>: every parameter's
                          gradient (float64), t32.grad.<name> (float32)
`python3 model_swin.py full OUT_PREFIX SIDE VARIANT` writes the same for a full variant
(swin_b ...) on one image of SIDE x SIDE (bench/swin.sh).
"""
import copy
import sys

import numpy as np
import torch
from torchvision.models import swin_transformer as tvs

sys.path.insert(0, 'tests/gen')
import model_st  # noqa: E402

VARIANTS = {'swin_t': (96, [2, 2, 6, 2], [3, 6, 12, 24], 7),
            'swin_s': (96, [2, 2, 18, 2], [3, 6, 12, 24], 7),
            'swin_b': (128, [2, 2, 18, 2], [4, 8, 16, 32], 7),
            'swin_b_w12': (128, [2, 2, 18, 2], [4, 8, 16, 32], 12)}
SMALL = (8, [2, 2, 4, 2], [1, 2, 2, 4], 2)


def make(cfg, classes, seed):
    torch.manual_seed(seed)
    e, d, h, w = cfg
    m = tvs.SwinTransformer(patch_size=[4, 4], embed_dim=e, depths=d, num_heads=h,
                            window_size=[w, w], stochastic_depth_prob=0.0, num_classes=classes)
    with torch.no_grad():  # away from the init's zeros/ones and near-uniform attention
        for name, p in m.named_parameters():
            if name.endswith('bias') or 'norm' in name:
                p.add_(0.1 * torch.randn_like(p))
            if 'relative_position_bias_table' in name:
                p.normal_(0, 0.5)
            if 'qkv.weight' in name:
                p.mul_(5)
    return m.eval()


def official_name(k):
    """torchvision swin key -> official Swin key (None: a buffer the official loader drops)."""
    p = k.split('.')
    if p[0] == 'features':
        i = int(p[1])
        if i == 0:
            return {'0': 'patch_embed.proj', '2': 'patch_embed.norm'}[p[2]] + '.' + p[3]
        if i % 2 == 1:
            rest = '.'.join(p[3:])
            if rest.endswith('relative_position_index'):
                return None
            rest = rest.replace('mlp.0.', 'mlp.fc1.').replace('mlp.3.', 'mlp.fc2.')
            return f'layers.{(i - 1) // 2}.blocks.{p[2]}.{rest}'
        return f'layers.{(i - 2) // 2}.downsample.' + '.'.join(p[2:])
    return k


def weights(m):
    out = {}
    for k, v in m.state_dict().items():
        n = official_name(k)
        if n is not None:
            out[n] = v.float().numpy()
    return out


def run(model, x, target, dtype):
    """Stage maps (last block output of each stage, NCHW), logits, Grad-CAM weights."""
    m = copy.deepcopy(model).to(dtype)
    last = []

    def keep(mod, inp, out):
        out.retain_grad()
        last.append(out)

    hooks = [m.features[2 * s + 1].register_forward_hook(keep) for s in range(4)]
    logits = m(torch.from_numpy(x).to(dtype))
    logits[torch.arange(len(target)), torch.as_tensor(target)].sum().backward()
    for h in hooks:
        h.remove()
    out = {f'stage{s + 1}': t.detach().permute(0, 3, 1, 2).float().numpy() for s, t in enumerate(last)}
    out['logits'] = logits.detach().float().numpy()
    for s, t in enumerate(last):
        out[f'gradcam{s + 1}'] = t.grad.mean(dim=(1, 2)).float().numpy()
    return out


def param_grads(model, x, up, dtype):
    """Every parameter's gradient (official names) from upstream gradients of the stage maps
    (NCHW) and logits."""
    m = copy.deepcopy(model).to(dtype)  # a fresh copy per run: no state left by another dtype
    last = []
    hooks = [m.features[2 * s + 1].register_forward_hook(lambda mod, i, o: last.append(o) and None)
             for s in range(4)]
    logits = m(torch.from_numpy(x).to(dtype))
    for h in hooks:
        h.remove()
    loss = (logits * torch.from_numpy(up['dlogits']).to(dtype)).sum()
    for s, t in enumerate(last):
        loss = loss + (t.permute(0, 3, 1, 2) * torch.from_numpy(up[f'dstage{s + 1}']).to(dtype)).sum()
    loss.backward()
    out = {}
    for k, p in m.named_parameters():
        out['grad.' + official_name(k)] = p.grad.float().numpy()
    return out


def write(prefix, m, x, target):
    model_st.save(prefix + 'weights.safetensors', weights(m), {'generator': 'tests/gen/model_swin.py'})
    io = run(m, x, target, torch.float64)
    io.update({'t32.' + k: v for k, v in run(m, x, target, torch.float32).items()})
    io['image'] = x
    io['target'] = np.array(target, np.int64)
    model_st.save(prefix + 'io.safetensors', io, {'torch': torch.__version__})
    rng = np.random.default_rng(12)
    up = {f'dstage{s + 1}': rng.standard_normal(io[f'stage{s + 1}'].shape).astype(np.float32) for s in range(4)}
    up['dlogits'] = rng.standard_normal(io['logits'].shape).astype(np.float32)
    gr = dict(up)
    gr.update(param_grads(m, x, up, torch.float64))
    gr.update({'t32.' + k: v for k, v in param_grads(m, x, up, torch.float32).items()})
    model_st.save(prefix + 'grads.safetensors', gr, {'torch': torch.__version__})


def main():
    if len(sys.argv) == 5 and sys.argv[1] == 'full':
        side, variant = int(sys.argv[3]), sys.argv[4]
        m = make(VARIANTS[variant], 1000, 3)
        x = np.random.default_rng(4).standard_normal((1, 3, side, side)).astype(np.float32)
        write(sys.argv[2], m, x, [417])
        return
    m = make(SMALL, 10, 9)
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64)).astype(np.float32)
    write('tests/fixtures/model/swin_small.', m, x, [3, 7])


if __name__ == '__main__':
    main()
