"""tests/gen/model_prims.py: PyTorch reference values for every primitive of backend/ops.h,
written to tests/fixtures/model/prims.safetensors (read by tests/test_backend_ops.c).

  /usr/bin/python3 tests/gen/model_prims.py [--out tests/fixtures/model/prims.safetensors]

Each case <case> stores its float32 inputs (<case>.x, <case>.w, ...), an upstream gradient
<case>.dy, and the reference outputs and gradients computed in float64 (<case>.y, <case>.dx,
<case>.dw, ...). Geometry is in the C test; keep the two in step."""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_c3n_ref as ref  # noqa: E402
import model_st as st  # noqa: E402

OUT = {}


def put(name, t):
    OUT[name] = t.detach().float().numpy()


def run(case, fn, inputs, **kw):
    """inputs: dict name -> float32 tensor; fn(**double inputs) -> output; stores y and grads."""
    dbl = {k: v.double().requires_grad_(v.is_floating_point()) for k, v in inputs.items()}
    y = fn(**dbl, **kw)
    dy = torch.randn(y.shape)
    (y * dy.double()).sum().backward()
    for k, v in inputs.items():
        put(f'{case}.{k}', v)
        if dbl[k].grad is not None:
            put(f'{case}.d{k}', dbl[k].grad)
    put(f'{case}.y', y)
    put(f'{case}.dy', dy)


def conv(case, N, C, H, W, K, R, stride, pad, dil, groups):
    run(case, lambda x, w, b: F.conv2d(x, w, b, stride, pad, dil, groups),
        {'x': torch.randn(N, C, H, W), 'w': torch.randn(K, C // groups, R, R) * 0.3,
         'b': torch.randn(K)})


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument('--out', default=os.path.join(here, '..', 'fixtures', 'model', 'prims.safetensors'))
    a = ap.parse_args()
    torch.manual_seed(5)
    # conv2d: name N C H W K R stride pad dil groups (same table in test_backend_ops.c)
    conv('conv_3x3', 2, 3, 6, 5, 4, 3, 1, 1, 1, 1)
    conv('conv_1x1', 2, 5, 4, 3, 3, 1, 1, 0, 1, 1)
    conv('conv_dil2', 1, 3, 7, 7, 2, 3, 1, 2, 2, 1)
    conv('conv_dil6', 2, 2, 4, 4, 3, 3, 1, 6, 6, 1)
    conv('conv_s2', 2, 3, 9, 8, 4, 3, 2, 1, 1, 1)
    conv('conv_7s4', 1, 3, 15, 13, 4, 7, 4, 3, 1, 1)
    conv('conv_g2', 2, 4, 5, 5, 6, 3, 1, 1, 1, 2)
    conv('conv_dw', 2, 4, 5, 6, 4, 3, 1, 1, 1, 4)
    run('linear', lambda x, w, b: F.linear(x, w, b),
        {'x': torch.randn(3, 5), 'w': torch.randn(4, 5), 'b': torch.randn(4)})
    run('relu', lambda x: F.relu(x), {'x': torch.randn(40)})
    run('gelu', lambda x: F.gelu(x), {'x': torch.randn(40) * 2})
    run('sigmoid', lambda x: torch.sigmoid(x), {'x': torch.randn(40) * 3})
    run('softmax', lambda x: F.softmax(x, -1), {'x': torch.randn(3, 7) * 2})
    run('ln_last', lambda x, w, b: F.layer_norm(x, (6,), w, b, 1e-6),
        {'x': torch.randn(4, 6), 'w': torch.randn(6), 'b': torch.randn(6)})
    run('ln_chan', lambda x, w, b: F.layer_norm(x.permute(0, 2, 3, 1), (5,), w, b, 1e-5).permute(0, 3, 1, 2),
        {'x': torch.randn(2, 5, 3, 4), 'w': torch.randn(5), 'b': torch.randn(5)})
    # BatchNorm: train (batch stats; running stats updated) and eval (running stats)
    for mode in ('train', 'eval'):
        rm, rv = torch.randn(3) * 0.1, torch.rand(3) + 0.5
        rmd, rvd = rm.double(), rv.double()
        run(f'bn_{mode}', lambda x, w, b: F.batch_norm(x, rmd, rvd, w, b, mode == 'train', 0.1, 1e-5),
            {'x': torch.randn(2, 3, 4, 5), 'w': torch.randn(3), 'b': torch.randn(3)})
        put(f'bn_{mode}.rm0', rm), put(f'bn_{mode}.rv0', rv)
        put(f'bn_{mode}.rm1', rmd), put(f'bn_{mode}.rv1', rvd)
    # resize: name H W OH OW align_corners
    for name, h, w, oh, ow, ac in (('rs_up_t', 3, 4, 6, 8, True), ('rs_up_f', 3, 4, 6, 8, False),
                                   ('rs_odd_t', 5, 3, 7, 8, True), ('rs_odd_f', 5, 3, 7, 8, False),
                                   ('rs_down_f', 8, 6, 3, 4, False), ('rs_one_f', 1, 1, 3, 2, False)):
        run(name, lambda x: F.interpolate(x, size=(oh, ow), mode='bilinear', align_corners=ac),
            {'x': torch.randn(2, 2, h, w)})
    run('gap', lambda x: x.mean(dim=(2, 3)), {'x': torch.randn(2, 3, 4, 5)})
    run('chmean', lambda x: x.mean(dim=1, keepdim=True), {'x': torch.randn(2, 3, 4, 5)})
    run('cat', lambda a, b: torch.cat([a, b], 1), {'a': torch.randn(2, 3, 2, 2), 'b': torch.randn(2, 2, 2, 2)})
    run('add_c', lambda x, s: x + s, {'x': torch.randn(2, 3, 4), 's': torch.randn(1, 3, 1)})
    run('mul_nc', lambda x, s: x * s, {'x': torch.randn(2, 3, 4), 's': torch.randn(2, 3, 1)})
    run('mul_nhw', lambda x, s: x * s, {'x': torch.randn(2, 3, 4), 's': torch.randn(2, 1, 4)})
    # losses: BCE-with-logits + Dice over [B, n]
    run('loss', lambda x, g: ref.bce_dice(x, g).reshape(1),
        {'x': torch.randn(3, 1, 4, 5) * 2, 'g': (torch.rand(3, 1, 4, 5) > 0.5).float()})
    # CCAM: x [N,C,H,W], Grad-CAM weights cw [N,C]
    def ccam(x, cw):
        w = F.normalize(cw, dim=1)
        x = x * torch.sigmoid(w)[:, :, None, None]
        return x * torch.sigmoid(x.mean(dim=1, keepdim=True))
    run('ccam', ccam, {'x': torch.randn(2, 4, 3, 3), 'cw': torch.randn(2, 4)})
    # Adam: 3 steps of torch.optim.Adam on p with given grads, lr 1e-2, weight decay 0.1
    p0 = torch.randn(10)
    p = p0.clone().requires_grad_(True)
    opt = torch.optim.Adam([p], lr=1e-2, weight_decay=0.1)
    gs = torch.randn(3, 10)
    for k in range(3):
        p.grad = gs[k].clone()
        opt.step()
    put('adam.p0', p0), put('adam.g', gs), put('adam.p3', p)
    st.save(a.out, OUT)


if __name__ == '__main__':
    main()
