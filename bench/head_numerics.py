"""bench/head_numerics.py: judge fresh C3N-head cases by float32's yardstick, ours next to
PyTorch's own second float32 form (called by bench/head_numerics.sh).

  /usr/bin/python3 bench/head_numerics.py CASE [CASE...]

Each CASE is a path prefix: CASE.expect.safetensors (tests/gen/model_head.py: the float64
reference, metadata f32err.<name> = PyTorch float32 with the official TPAVI, f32lr.<name> =
PyTorch float32 with the low-rank TPAVI, f32nd.<name> = PyTorch float32, official TPAVI, oneDNN
off) and CASE_out.safetensors (avs-model run c3n_head).
For every case and every tensor with both errors it prints, per "implementation" judged against
a yardstick:
  ours/max    our error / max(official, low-rank)   (what tests/gen/model_compare.py --strict uses)
  ours/off    our error / PyTorch official's error
  lr/off      PyTorch low-rank's error / PyTorch official's error (a second float32 evaluation of
              the same function, judged exactly like ours/off: a peer; it shares every op
              outside TPAVI with the official run, so its rounding errors are partly the same)
  nd/off      PyTorch with oneDNN off (its native convolution kernels, official TPAVI) / PyTorch
              official: the other peer, other rounding in every convolution
the worst ratio (and its tensor) and how many tensors are over 2x; then, over all cases, how
many cases have any tensor over 2x, for each, and per tensor family (stage numbers merged) the
geometric mean of each ratio and how many of its tensors are over 2x, for the families where
any judge has one. All errors are relative L2 against float64."""
import collections
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'gen'))
import model_st as st  # noqa: E402

JUDGES = ('ours/max', 'ours/off', 'lr/off', 'nd/off')
# Each float32 evaluation against the largest error of the others (PyTorch's three runs are
# three equally valid float32 results: the yardstick is how far float32 can land)
OTHERS = ('ours/all', 'ours/o+n', 'off/l+n', 'lr/o+n', 'nd/o+l')


def judge_case(case):
    want = st.load(case + '.expect.safetensors')
    meta = st.metadata(case + '.expect.safetensors')
    got = st.load(case + '_out.safetensors')
    big = max(np.linalg.norm(w.astype(np.float64)) for w in want.values())
    ratios = {j: [] for j in JUDGES + OTHERS}
    for k, w in want.items():
        off, lr, nd = meta.get('f32err.' + k), meta.get('f32lr.' + k), meta.get('f32nd.' + k)
        if off is None or lr is None or nd is None or k not in got:
            continue
        off, lr, nd = float(off), float(lr), float(nd)
        if off <= 0 or lr <= 0:
            continue
        e = st.rel_err(got[k].astype(np.float64), w.astype(np.float64), big)
        ratios['ours/max'].append((e / max(off, lr), k))
        ratios['ours/off'].append((e / off, k))
        ratios['lr/off'].append((lr / off, k))
        ratios['nd/off'].append((nd / off, k))
        ratios['ours/all'].append((e / max(off, lr, nd), k))
        ratios['ours/o+n'].append((e / max(off, nd), k))
        ratios['off/l+n'].append((off / max(lr, nd), k))
        ratios['lr/o+n'].append((lr / max(off, nd), k))
        ratios['nd/o+l'].append((nd / max(off, lr), k))
    return ratios


def short(name):
    """A tensor's name without the grad. prefix."""
    return name[5:] if name.startswith('grad.') else name


def family(name):
    """A tensor's family: its name with the stage numbers merged (tpavi_3.theta.bias ->
    tpavi_*.theta.bias)."""
    parts = short(name).split('.')
    i = 1 if parts[0] == 'buf' else 0
    parts[i] = re.sub(r'\d+$', '*', parts[i])
    return '.'.join(parts)


def print_families(fams):
    """Per family with any ratio over 2x: geometric mean and count over 2x for each judge."""
    print('tensor families with a tensor over 2x (geometric mean of the ratio, tensors over 2x):')
    for fam in sorted(fams, key=lambda f: -sum(x > 2 for j in JUDGES for x in fams[f][j])):
        r = fams[fam]
        if not any(x > 2 for j in JUDGES for x in r[j]):
            continue
        cols = [f'{j} {np.exp(np.mean(np.log(np.maximum(r[j], 1e-12)))):4.2f} {sum(x > 2 for x in r[j]):3d}' for j in JUDGES]
        print(f'  {fam:<34} ' + '   '.join(cols) + f'   of {len(r[JUDGES[0]])}')


def main():
    cases = sys.argv[1:]
    if not cases:
        sys.exit(__doc__)
    failing = {j: 0 for j in JUDGES + OTHERS}
    worst_all = {j: (0.0, '', '') for j in JUDGES + OTHERS}
    fams = collections.defaultdict(lambda: {j: [] for j in JUDGES})
    for case in cases:
        r = judge_case(case)
        for j in JUDGES:
            for x, name in r[j]:
                fams[family(name)][j].append(x)
        cols = []
        for j in JUDGES + OTHERS:
            worst, name = max(r[j])
            over = sum(x > 2 for x, _ in r[j])
            failing[j] += over > 0
            if worst > worst_all[j][0]:
                worst_all[j] = (worst, name, os.path.basename(case))
            if j in JUDGES:
                cols.append(f'{j} {worst:5.2f}x ({over:2d} over 2x) {short(name):<24}')
        print(f'{os.path.basename(case):<12} ' + '  '.join(cols))
    n = len(cases)
    print(f'{n} cases, {len(r["ours/max"])} tensors each; cases with a tensor over 2x of the yardstick:')
    for j in JUDGES:
        w = worst_all[j]
        print(f'  {j:<9} {failing[j]:3d} of {n}   worst {w[0]:.2f}x ({w[1]}, {w[2]})')
    print('each float32 evaluation against the largest error of the others (ours/all: of all three '
          'PyTorch runs; X/a+b: of runs a and b):')
    for j in OTHERS:
        w = worst_all[j]
        print(f'  {j:<9} {failing[j]:3d} of {n}   worst {w[0]:.2f}x ({w[1]}, {w[2]})')
    print_families(fams)


if __name__ == '__main__':
    main()
