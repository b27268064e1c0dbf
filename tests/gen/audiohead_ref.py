"""tests/gen/audiohead_ref.py FIXTURES INIT.st TRACE FINAL.st LR: the decision-level attention
head trained in PyTorch (float64, and float32 for the yardstick) from avs-audiohead's initial
weights, on the same clips in the same order (the trace's indices), compared with avs-audiohead's
per-step losses and final weights; and the fold of the final head through the PCA checked
against the PCA-space head on unrounded postprocessed embeddings. Exit 1 on a mismatch."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402

EPS = 1e-7
NAMES = ['audiohead.cla.weight', 'audiohead.cla.bias', 'audiohead.att.weight', 'audiohead.att.bias']


def clips(fx):
    d = np.load(fx + '/data.npz')
    off = np.r_[0, np.cumsum(d['len_train'])]
    return [d['x_train'][off[i]:off[i + 1]] for i in range(len(off) - 1)], d['y_train']


def run(init, xs, ys, trace, lr, dtype):
    p = [torch.tensor(init[n], dtype=dtype, requires_grad=True) for n in NAMES]
    opt = torch.optim.Adam(p, lr=lr)
    losses = []
    for idx in trace:
        outs = []
        for i in idx:
            x = torch.tensor(xs[i], dtype=dtype)
            prob = torch.sigmoid(x @ p[0].T + p[1])
            att = torch.clamp(torch.sigmoid(x @ p[2].T + p[3]), EPS, 1 - EPS)
            outs.append((att * prob).sum(0) / att.sum(0))
        out = torch.clamp(torch.stack(outs), EPS, 1 - EPS)
        y = torch.tensor(ys[idx], dtype=dtype)
        loss = torch.nn.functional.binary_cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses), [t.detach().double().numpy() for t in p]


def check_fold(final, fx):
    pca = model_st.load(fx + '/pca.safetensors')
    E, mu = pca['pca_eigen_vectors'].astype(np.float64), pca['pca_means'].astype(np.float64)
    W, b = final[NAMES[0]].astype(np.float64), final[NAMES[1]].astype(np.float64)
    x = np.random.default_rng(3).normal(0, 1, size=(50, 128))
    q = (E @ (x - mu).T).T * (255 / 512) - 1 / 256
    want = q @ W.T + b
    got = x @ final['head.weight'].astype(np.float64).T + final['head.bias'].astype(np.float64)
    err = np.abs(got - want).max() / max(1.0, np.abs(want).max())
    print('fold: max |folded - PCA-space| logit %.3g (relative to the largest logit)' % err)
    return err < 1e-5


def main():
    fx, init_p, trace_p, final_p, lr = sys.argv[1:6]
    init, final = model_st.load(init_p), model_st.load(final_p)
    xs, ys = clips(fx)
    rows = [line.split() for line in open(trace_p)]
    ours_loss = np.array([float(r[1]) for r in rows])
    trace = [[int(v) for v in r[2:]] for r in rows]
    l64, w64 = run(init, xs, ys, trace, float(lr), torch.float64)
    l32, w32 = run(init, xs, ys, trace, float(lr), torch.float32)
    ok = True
    dl_ours, dl_32 = np.abs(ours_loss - l64).max(), np.abs(l32 - l64).max()
    print('losses (%d steps): ours vs float64 %.3g, torch float32 vs float64 %.3g' %
          (len(rows), dl_ours, dl_32))
    # Adam's first steps divide by sqrt(v): near-zero gradients turn rounding into steps of up to
    # lr, so float32 runs (ours, PyTorch's) scatter around float64; the yardstick is PyTorch
    # float32's distance over all the parameters, the floor a few float32 ulps of the loss
    ok &= dl_ours <= max(3 * dl_32, 3e-6)
    d_ours = [np.abs(final[n].astype(np.float64) - a64).max() for n, a64 in zip(NAMES, w64)]
    d_32 = [np.abs(a32 - a64).max() for a32, a64 in zip(w32, w64)]
    for n, a, b in zip(NAMES, d_ours, d_32):
        print('%s: ours vs float64 %.3g, torch float32 vs float64 %.3g' % (n, a, b))
    ok &= max(d_ours) <= max(3 * max(d_32), 1e-6)
    moved = np.abs(final[NAMES[0]].astype(np.float64) - init[NAMES[0]]).max()
    print('weights moved by up to %.3g' % moved)
    ok &= moved > 1e-4
    ok &= check_fold(final, fx)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
