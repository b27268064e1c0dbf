"""tests/gen/model_head.py: write a C3N-head test case (weights, inputs, upstream gradient,
expected outputs and gradients) from the PyTorch reference in model_c3n_ref.py.

  /usr/bin/python3 tests/gen/model_head.py --out DIR/NAME [--seed 1] [--size 16]
      [--chans 4,6,8,10] [--D 8] [--Ci 4] [--A 6] [--O1 8] [--O2 4] [--N 2] [--T 2]
      [--train] [--official] [--lowrank] [--avsbench] [--av-match L]

Writes NAME.weights.safetensors (state_dict with the official names), NAME.inputs.safetensors
(x1..x4 [N*T,C_s,H_s,W_s], audio [N,T,A]), NAME.dout.safetensors (logits: the upstream
gradient) and NAME.expect.safetensors (logits, grad.<param> for every parameter, grad.x1..x4,
grad.audio, and with --train the updated BN running stats as buf.<name>; its metadata
f32err.<name> is the relative error of PyTorch's own float32 run of the same case; without
--lowrank also f32lr.<name>, that of PyTorch's float32 run with TPAVI in the low-rank form, and
f32nd.<name>, that of the official form with oneDNN off: convolutions by PyTorch's native
kernels, a second float32 evaluation with other rounding, bench/head_numerics.py's peer). The reference runs
in float64 from float32 weights and inputs (the official, full-matrix TPAVI), so the C
float32 result is measured against the exact function. --avsbench: the AVSBench baseline's
head instead (Classifier_Module necks conv<i>.conv2d_list.0..3, TPAVI as tpavi_b<i>); with
--av-match L the gradients are those of sum(logits * dout) + L * AVSBench's MS3 audio-visual
matching loss (model_c3n_ref.av_match), whose value is written as av_match [1]. The committed fixtures in
tests/fixtures/model/ were made with:
  /usr/bin/python3 tests/gen/model_head.py --out tests/fixtures/model/head_eval --seed 1
  /usr/bin/python3 tests/gen/model_head.py --out tests/fixtures/model/head_train --seed 2 --train
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_c3n_ref as ref  # noqa: E402
import model_st as st  # noqa: E402


def backward(m, logits, dout, lam):
    """The backward of sum(logits * dout) (+ lam * the matching loss): logits, av_match."""
    out = {'logits': logits.detach()}
    if not lam:
        logits.backward(dout)
        return out
    avm = ref.av_match(m, logits)
    ((logits * dout).sum() + lam * avm).backward()
    out['av_match'] = avm.detach().reshape(1)
    return out


def gradients(m, xs, audio, train, out):
    """Every parameter's gradient (zeros where none), the inputs' gradients and, in train mode,
    the updated BatchNorm running statistics of m, added to out."""
    for name, p in m.named_parameters():
        out['grad.' + name] = p.grad if p.grad is not None else torch.zeros_like(p)
    for s in range(4):
        out[f'grad.x{s + 1}'] = xs[s].grad
    out['grad.audio'] = audio.grad
    if train:
        for name, b in m.named_buffers():
            if 'running' in name:
                out['buf.' + name] = b
    return out


def run_f32(a, chans, sd, xs, audio, dout, lowrank, onednn=True):
    """The case in float32 (TPAVI official or low-rank; convolutions by oneDNN or, with
    onednn False, by PyTorch's native kernels): logits and every gradient."""
    m32 = ref.C3NHead(chans, a.D, a.Ci, a.A, a.T, lowrank=lowrank, O1=a.O1, O2=a.O2,
                      avsbench=a.avsbench)
    m32.load_state_dict(sd)
    m32.train(a.train)
    x32 = [x.clone().requires_grad_(True) for x in xs]
    a32 = audio.clone().requires_grad_(True)
    with torch.backends.mkldnn.flags(enabled=onednn):
        got = backward(m32, m32(x32, a32), dout, a.av_match)
    return gradients(m32, x32, a32, a.train, got)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--size', type=int, default=16, help='first stage size H0 (input/4)')
    ap.add_argument('--chans', default='4,6,8,10')
    ap.add_argument('--D', type=int, default=8)
    ap.add_argument('--Ci', type=int, default=4)
    ap.add_argument('--A', type=int, default=6)
    ap.add_argument('--O1', type=int, default=8, help='output_conv widths (official 128, 32)')
    ap.add_argument('--O2', type=int, default=4)
    ap.add_argument('--N', type=int, default=2)
    ap.add_argument('--T', type=int, default=2)
    ap.add_argument('--train', action='store_true')
    ap.add_argument('--margin', type=float, default=5e-6,
                    help='redraw while a ReLU input is closer to 0 (0: never; full-size cases)')
    ap.add_argument('--lowrank', action='store_true',
                    help='TPAVI in the exact low-rank form (for full-size cases; default: official)')
    ap.add_argument('--avsbench', action='store_true',
                    help="the AVSBench baseline's head (Classifier_Module necks, tpavi_b<i>)")
    ap.add_argument('--av-match', type=float, default=0,
                    help="lambda of AVSBench's MS3 matching loss (needs --avsbench; 0: off)")
    ap.add_argument('--official', action='store_true',
                    help='official widths: chans 64,128,320,512, D 256, Ci 128, A 128, O1 128, O2 32')
    a = ap.parse_args()
    if a.official:
        a.chans, a.D, a.Ci, a.A, a.O1, a.O2 = '64,128,320,512', 256, 128, 128, 128, 32
    chans = [int(c) for c in a.chans.split(',')]
    ref.TRACK_MARGIN[0] = a.margin > 0
    # redraw (seed, seed+1, ...) until no ReLU input is within --margin of zero
    for seed in range(a.seed, a.seed + 200):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed + 1000)
        m = ref.C3NHead(chans, a.D, a.Ci, a.A, a.T, lowrank=a.lowrank, O1=a.O1, O2=a.O2,
                        avsbench=a.avsbench)
        ref.randomize(m, gen)
        sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
        B = a.N * a.T
        xs = [torch.randn(B, c, a.size >> s, a.size >> s) for s, c in enumerate(chans)]
        audio = torch.randn(a.N, a.T, a.A)
        dout = torch.randn(B, 1, 4 * a.size, 4 * a.size)
        m = m.double()
        m.train(a.train)
        xd = [x.double().requires_grad_(True) for x in xs]
        ad = audio.double().requires_grad_(True)
        ref.RELU_MARGIN[0] = float('inf')
        logits = m(xd, ad)
        if ref.RELU_MARGIN[0] > a.margin or a.margin <= 0:
            break
    else:
        sys.exit('model_head.py: no draw without a near-zero ReLU input; try another --seed')
    print(f'{a.out}: seed {seed}, smallest ReLU input {ref.RELU_MARGIN[0]:.2e}')
    exp = gradients(m, xd, ad, a.train, backward(m, logits, dout.double(), a.av_match))
    # PyTorch's own float32 runs of the same case: their errors against the float64 reference
    # are stored per tensor so that a comparison can tell an ill-conditioned tensor (float32
    # itself cannot do better) from a wrong one. f32err.<name>: the reference's TPAVI form
    # (official, or low-rank with --lowrank); without --lowrank also f32lr.<name>, the low-rank
    # form (the one model/c3n_blocks.c computes), and f32nd.<name>, the official form with
    # oneDNN off (other convolution kernels). They are the same function in float32 with other
    # rounding orders, and on the sums that cancel (bias gradients, TPAVI's theta/phi/
    # align_channel) they differ by 2-9x in either direction on fresh random cases, so the
    # yardstick of tests/gen/model_compare.py and tests/test_model_head.c is the larger of
    # f32err and f32lr; f32nd is bench/head_numerics.py's peer (judged like us, not a yardstick).
    big = max(v.double().norm().item() for v in exp.values())
    meta = {}
    forms = [('f32err.', a.lowrank, True)]
    if not a.lowrank:
        forms += [('f32lr.', True, True), ('f32nd.', False, False)]
    for key, lowrank, onednn in forms:
        got32 = run_f32(a, chans, sd, xs, audio, dout, lowrank, onednn)
        for k, v in got32.items():
            err = st.rel_err(v.detach().double().numpy(), exp[k].detach().double().numpy(), big)
            meta[key + k] = f'{err:.3e}'
    f32 = lambda d: {k: v.detach().float().numpy() if v.is_floating_point() else v.numpy()
                     for k, v in d.items()}
    st.save(a.out + '.weights.safetensors', f32(sd))
    ins = {f'x{s + 1}': x for s, x in enumerate(xs)}
    ins['audio'] = audio
    st.save(a.out + '.inputs.safetensors', f32(ins))
    st.save(a.out + '.dout.safetensors', f32({'logits': dout}))
    st.save(a.out + '.expect.safetensors', f32(exp), meta)


if __name__ == '__main__':
    main()
