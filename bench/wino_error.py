"""bench/wino_error.py: float32 rounding error of Winograd F(m x m, 3x3) variants against a direct
(im2col GEMM) conv, both measured against a float64 direct conv, in numpy.

  /usr/bin/python3 bench/wino_error.py

The numbers behind docs/backend.md's Numerics section: which tile size and interpolation
points could make the CPU's backward-data pass as accurate as a direct conv. Transforms are
built exactly (fractions) by Toom-Cook from the points (plus the point at infinity); the
tiles are computed as the backend does (transforms, one float32 GEMM per transformed
position over the channels, output transform). Maps: random normal ("smooth") and with half
the values zeroed ("rough": gradients behind ReLU masks)."""
from fractions import Fraction as Fr

import numpy as np


def polymul(a, b):
    c = [Fr(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for k, y in enumerate(b):
            c[i + k] += x * y
    return c


def matrices(points, m, r=3):
    """A^T [m,n], G [n,r], B^T [n,n] of F(m, r) for the n - 1 finite points."""
    n = m + r - 1
    pts = [Fr(p) for p in points]
    assert len(pts) == n - 1
    at = [[p ** i for p in pts] + [Fr(int(i == m - 1))] for i in range(m)]
    g, bt = [], []
    for j, pj in enumerate(pts):
        norm, poly = Fr(1), [Fr(1)]
        for l, pl in enumerate(pts):
            if l != j:
                norm *= pj - pl
                poly = polymul(poly, [-pl, Fr(1)])
        g.append([pj ** k / norm for k in range(r)])
        bt.append(poly + [Fr(0)] * (n - len(poly)))
    g.append([Fr(int(k == r - 1)) for k in range(r)])
    poly = [Fr(1)]
    for pl in pts:
        poly = polymul(poly, [-pl, Fr(1)])
    bt.append(poly)
    f = lambda a: np.array([[float(x) for x in row] for row in a])
    return f(at), f(g), f(bt)


def winograd(x, w, m, at, g, bt):
    """valid 3x3 correlation of x [C,H,W] with w [K,C,3,3] in float32 by F(m x m, 3x3)"""
    c, h, wd = x.shape
    k, n = w.shape[0], m + 2
    p, q = h - 2, wd - 2
    th, tw = -(-p // m), -(-q // m)
    xp = np.zeros((c, th * m + 2, tw * m + 2), np.float32)
    xp[:, :h, :wd] = x
    at, g, bt = at.astype(np.float32), g.astype(np.float32), bt.astype(np.float32)
    u = np.einsum('ij,kcjl,ml->kcim', g, w, g).astype(np.float32)
    tiles = np.stack([xp[:, i * m:i * m + n, j * m:j * m + n] for i in range(th) for j in range(tw)], 1)
    v = np.einsum('ij,ctjl,ml->ctim', bt, tiles, bt).astype(np.float32)
    mm = np.stack([u[:, :, a, b] @ v[:, :, a, b] for a in range(n) for b in range(n)], -1)
    y = np.einsum('ij,ktjl,ml->ktim', at, mm.reshape(k, -1, n, n), at).astype(np.float32)
    out = y.reshape(k, th, tw, m, m).transpose(0, 1, 3, 2, 4).reshape(k, th * m, tw * m)
    return out[:, :p, :q]


def direct(x, w, dtype):
    c, h, wd = x.shape
    k, p, q = w.shape[0], h - 2, wd - 2
    cols = np.stack([x[:, r:r + p, s:s + q] for r in range(3) for s in range(3)], 1)
    return (w.reshape(k, c * 9).astype(dtype) @ cols.reshape(c * 9, p * q).astype(dtype)).reshape(k, p, q)


VARIANTS = [
    ('F(4,3) 0,+-1,1/2,-2 (ours)', 4, [0, 1, -1, Fr(1, 2), -2]),
    ('F(4,3) 0,+-1,+-2 (Lavin)', 4, [0, 1, -1, 2, -2]),
    ('F(4,3) 0,+-1,+-1/2', 4, [0, 1, -1, Fr(1, 2), Fr(-1, 2)]),
    ('F(3,3) 0,+-1,-2', 3, [0, 1, -1, -2]),
    ('F(3,3) 0,+-1,1/2', 3, [0, 1, -1, Fr(1, 2)]),
    ('F(2,3) 0,+-1', 2, [0, 1, -1]),
]


def main():
    rng = np.random.default_rng(1)
    for c, k, size, kind in [(64, 64, 30, 'smooth'), (128, 64, 30, 'rough'), (256, 128, 16, 'rough')]:
        x = rng.standard_normal((c, size, size))
        if kind == 'rough':
            x *= rng.random((c, size, size)) > 0.5
        w = rng.standard_normal((k, c, 3, 3)) / np.sqrt(c * 9)
        ref = direct(x, w, np.float64)
        err = lambda y: np.linalg.norm(y - ref) / np.linalg.norm(ref)
        x32, w32 = x.astype(np.float32), w.astype(np.float32)
        base = err(direct(x32, w32, np.float32))
        print(f'{c} -> {k} channels, {size}x{size}, {kind}: direct float32 {base:.2e} relative L2')
        for name, m, pts in VARIANTS:
            e = err(winograd(x32, w32, m, *matrices(pts, m)))
            print(f'  {name:28s} {e:.2e}  {e / base:4.1f}x direct')


if __name__ == '__main__':
    main()
