"""bench/head_numerics_attrib.py: where PyTorch's own float32 error in TPAVI's bias gradients
comes from, on the cases bench/head_numerics.sh keeps.

  AVS_NUMERICS_DIR=DIR bash bench/head_numerics.sh 20
  /usr/bin/python3 bench/head_numerics_attrib.py DIR

For every case (DIR/*.expect.safetensors with its weights, inputs and upstream gradient) the head
runs in float64 (tests/gen/model_c3n_ref.py, official TPAVI) with one group of submodules in
float32 (their forward and backward: the group's weights and inputs rounded to float32, its
arithmetic done by PyTorch in float32, its outputs cast back). The error that the group alone
causes in the gradients of TPAVI's theta.bias and phi.bias, divided by PyTorch's float32 error of
the whole head (the case's f32err metadata, the yardstick of issue 12's 2x criterion), tells how
much of that yardstick each group is. Independent sources add in quadrature, so the squares of
the shares add up to about 1. Two more rows run every submodule in float32 with oneDNN off (other
convolution kernels: a second float32 evaluation, bench/head_numerics.py's nd/off peer) and the
same with TPAVI kept in float64 (what computing TPAVI exactly would leave of that peer's error).
Per group and family it prints the geometric mean, the 90th percentile and the largest share, and
how many tensors are over 2x. ~30 s a group for 20 cases."""
import glob
import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'gen'))
import model_c3n_ref as ref  # noqa: E402
import model_st as st  # noqa: E402

STAGES = range(1, 5)


def each(fmt):
    return [fmt.format(i) for i in STAGES]


# (label, submodules in float32, oneDNN on)
GROUPS = [
    ('TPAVI, all of it', each('tpavi_{}'), True),
    ('TPAVI W_z conv (1x1)', each('tpavi_{}.W_z.0'), True),
    ('TPAVI W_z BatchNorm', each('tpavi_{}.W_z.1'), True),
    ('TPAVI theta conv', each('tpavi_{}.theta'), True),
    ('TPAVI phi + align_channel', each('tpavi_{}.phi') + each('tpavi_{}.align_channel'), True),
    ('TPAVI g conv', each('tpavi_{}.g'), True),
    ('TPAVI LayerNorm', each('tpavi_{}.norm_layer'), True),
    ('ASPP (forward values into TPAVI)', each('conv{}'), True),
    ('fusion paths + output conv', each('path{}') + ['output_conv'], True),
    ('everything, oneDNN off (nd peer)', each('conv{}') + each('tpavi_{}') + each('path{}') + ['output_conv'], False),
    ('everything but TPAVI, oneDNN off', each('conv{}') + each('path{}') + ['output_conv'], False),
]
FAMILIES = ('theta.bias', 'phi.bias')


class InFloat32(torch.nn.Module):
    """A submodule run in float32 inside a float64 model."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner.float()

    def forward(self, *args):
        return self.inner(*[a.float() if torch.is_tensor(a) else a for a in args]).double()


def config(w, ins):
    """The head's widths from a case's weights and inputs."""
    chans = [w[f'conv{i}.atrous_block1.weight'].shape[1] for i in STAGES]
    return dict(chans=chans, D=w['tpavi_1.norm_layer.weight'].shape[0],
                Ci=w['tpavi_1.theta.weight'].shape[0], A=w['tpavi_1.align_channel.weight'].shape[1],
                T=ins['audio'].shape[1], O1=w['output_conv.0.weight'].shape[0],
                O2=w['output_conv.2.weight'].shape[0])


def load_case(case):
    """A case's files, read once: weights, inputs, upstream gradient, the head's widths and
    PyTorch's float32 errors (the metadata of its expect file)."""
    w = st.load(case + '.weights.safetensors')
    ins = st.load(case + '.inputs.safetensors')
    return dict(w=w, ins=ins, dout=st.load(case + '.dout.safetensors')['logits'],
                cfg=config(w, ins), meta=st.metadata(case + '.expect.safetensors'))


def grads(case, f32mods, onednn):
    """Parameter gradients of a loaded case in float64 with f32mods in float32."""
    c, ins = case['cfg'], case['ins']
    m = ref.C3NHead(c['chans'], c['D'], c['Ci'], c['A'], c['T'], O1=c['O1'], O2=c['O2'])
    m.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in case['w'].items()})
    m = m.double()
    m.train(True)
    for name in f32mods:
        parent, child = name.rsplit('.', 1) if '.' in name else ('', name)
        owner = m.get_submodule(parent) if parent else m
        setattr(owner, child, InFloat32(getattr(owner, child)))
    xs = [torch.from_numpy(ins[f'x{s}'].copy()).double().requires_grad_(True) for s in STAGES]
    audio = torch.from_numpy(ins['audio'].copy()).double().requires_grad_(True)
    with torch.backends.mkldnn.flags(enabled=onednn):
        m(xs, audio).backward(torch.from_numpy(case['dout'].copy()).double())
    return {'grad.' + n.replace('.inner', ''): p.grad.double().numpy()
            for n, p in m.named_parameters() if p.grad is not None}


def family_of(name):
    """theta.bias or phi.bias for a TPAVI's bias gradient, else None."""
    return next((f for f in FAMILIES if name.endswith('.' + f) and 'tpavi' in name), None)


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit(__doc__)
    warnings.filterwarnings('ignore')
    paths = sorted(p[:-len('.expect.safetensors')] for p in glob.glob(os.path.join(sys.argv[1], '*.expect.safetensors')))
    if not paths:
        sys.exit(f'head_numerics_attrib.py: no cases in {sys.argv[1]}')
    cases = [load_case(p) for p in paths]
    exact = [grads(c, [], True) for c in cases]
    big = [max(np.linalg.norm(g) for g in e.values()) for e in exact]
    print(f'{len(cases)} cases; share = error caused by the group / PyTorch float32 error of the whole head')
    for label, mods, onednn in GROUPS:
        share = {f: [] for f in FAMILIES}
        for c, ex, b in zip(cases, exact, big):
            mixed = grads(c, mods, onednn)
            for k, want in ex.items():
                if family_of(k):
                    share[family_of(k)].append(st.rel_err(mixed[k], want, b) / float(c['meta']['f32err.' + k]))
        cols = []
        for f in FAMILIES:
            s = np.array(share[f])
            cols.append(f'{f} {np.exp(np.log(s).mean()):4.2f} {np.quantile(s, 0.9):4.2f} {s.max():4.2f} '
                        f'{(s > 2).sum():2d}/{len(s)}')
        print(f'  {label:<36} ' + '   '.join(cols))
    print('  (columns per family: geometric mean, 90th percentile, largest, tensors over 2x)')


if __name__ == '__main__':
    main()
