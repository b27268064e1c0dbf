"""tests/gen/model_compare.py: compare two safetensors files tensor by tensor.

  /usr/bin/python3 tests/gen/model_compare.py GOT.safetensors WANT.safetensors [--tol 1e-5]

Every tensor of WANT must be in GOT with the same shape and a relative L2 error
||got - want|| / ||want|| <= tol. A tensor that is zero up to rounding in WANT (||want|| <=
1e-7 x the largest norm in WANT: a gradient that is analytically zero, e.g. the conv bias
before a batch-statistics BatchNorm) is held to ||got|| <= tol x the largest norm instead:
its float32 value is pure rounding noise (PyTorch's own float32 run is ~1e-3 "relative").
If WANT carries PyTorch's own float32 errors per tensor (metadata f32err.<name> and, for the
official TPAVI form, f32lr.<name>: the same case in float32 with TPAVI in the low-rank form;
written by model_head.py), float32's spread is the larger of the two, and a tensor also passes
when its error is within 2x of it: an ill-conditioned random case (float32 itself cannot do
better) is not a wrong result. Such passes are listed as "f32-limited".
--strict: float32's spread is the only yardstick for every tensor that has it (no --tol pass):
at most 5% of those tensors over 2x of it and none over 5x (--every: none over 2x). Prints the
worst ratio to float32's spread. A sum that cancels (a bias
gradient, TPAVI's phi/theta) has a float32 error that is the noise of a few terms: PyTorch's
own two float32 forms differ by 2-4x on 0-7 of 144 tensors of a fresh D 64 case, and so do
we, while a systematic loss (Winograd's backward-data path: 5-10x on half the tensors) fails.
Prints the worst tensors; exit 1 on any failure."""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st as st  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('got')
    ap.add_argument('want')
    ap.add_argument('--tol', type=float, default=1e-5)
    ap.add_argument('--strict', action='store_true')
    ap.add_argument('--every', action='store_true', help='with --strict: no tensor over 2x')
    a = ap.parse_args()
    got, want = st.load(a.got), st.load(a.want)
    meta = st.metadata(a.want)
    bad, errs, limited, over2, nspread = 0, [], [], 0, 0
    worst = (0.0, '')
    big = max(np.linalg.norm(w.astype(np.float64)) for w in want.values())
    for k, w in want.items():
        if k not in got:
            print(f'missing: {k}')
            bad += 1
            continue
        g = got[k].astype(np.float64)
        w = w.astype(np.float64)
        if g.shape != w.shape:
            print(f'shape {k}: {g.shape} vs {w.shape}')
            bad += 1
            continue
        e = st.rel_err(g, w, big)
        errs.append((e, k))
        f32 = max(float(meta.get('f32err.' + k, 'nan')), float(meta.get('f32lr.' + k, 'nan')))
        if a.strict and f32 == f32:
            nspread += 1
            if f32 > 0 and e / f32 > worst[0]:
                worst = (e / f32, k)
            if not e <= 2 * f32:
                print(f'over 2x of float32: {k} ({e:.2e} = {e / f32:.1f}x PyTorch float32 {f32:.2e})')
                over2 += 1
                bad += not e <= 5 * f32
        elif not e <= a.tol:
            if e <= 2 * f32:
                limited.append(f'{k} ({e:.2e}, PyTorch float32 {f32:.2e})')
            else:
                bad += 1
    errs.sort(reverse=True)
    for e, k in errs[:8]:
        print(f'{e:.3e} {k}')
    for k in limited:
        print(f'f32-limited: {k}')
    if a.strict:
        if over2 > (0 if a.every else 0.05 * nspread):
            bad += 1
        print(f'{len(want)} tensors, {over2} of {nspread} over 2x of float32 '
              f'({"none allowed" if a.every else "at most 5%"}; worst {worst[0]:.2f}x, {worst[1]}), '
              f'{bad} failures')
    else:
        print(f'{len(want)} tensors, {bad} over {a.tol:g}')
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
