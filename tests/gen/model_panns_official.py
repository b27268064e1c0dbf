"""tests/gen/model_panns_official.py: tests/gen/model_panns.py's re-statement of Cnn14_16k
against the official code, at the official widths (64..2048, 81M parameters).

The official Cnn14 is in the PyPI wheel panns-inference (panns_inference/models.py, the code
of qiuqiangkong/audioset_tagging_cnn; its Cnn14 with sample_rate 16000, window 512, hop 160,
64 mels, fmin 50, fmax 8000 is Cnn14_16k: same layers and forward), on torchlibrosa and
librosa. Debian lacks librosa's dependencies, so this runs in a venv over Debian's torch:
  /usr/bin/python3 -m venv --system-site-packages /tmp/pannsvenv
  /tmp/pannsvenv/bin/pip install panns-inference==0.1.1 torchlibrosa==0.1.0 \\
      librosa==0.10.2.post1 numpy==1.24.2 scipy==1.11.4 matplotlib==3.7.5 contourpy==1.1.1
  /tmp/pannsvenv/bin/python tests/gen/model_panns_official.py
With --write DIR it also writes the official weights, the wave and the references for
bench/panns_full.c (our C code at full width), and --compare DIR judges that program's output.
(numpy is pinned to Debian's 1.24 ABI: Debian's torch 1.13 cannot take numpy 2 arrays; scipy,
matplotlib (imported by panns_inference/models.py) and contourpy to versions that accept it.)
bench/panns_official.sh makes the venv and runs this. Measured (2026-12, CPU): librosa's
filters equal the formula exactly (window 2.2e-16); log-mel 7.6e-6 dB, embedding 4.3e-6 at a
scale of 10.6, clipwise 7.8e-7; the network alone on the official log-mel: identical bits.
It prints and checks (float32 both, random weights and BatchNorm statistics, seed 9, the
2-chunk input of model_panns.py): log-mel, embedding and clipwise output of the official
model against the re-statement loaded with the official state_dict, and librosa's mel filters
and window against the librosa-free formulas. Exit status 1 on a difference.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_panns as mp  # noqa: E402


def write_case(out, off, wave):
    """The official weights (state_dict as tools/convert_checkpoint.py writes it: float32,
    int64 counters, the front end's tensors) and the wave for bench/panns_full.c, plus the
    references: the official float32 outputs and the re-statement in float64 (exact front end)."""
    sd = {k: (v.numpy() if v.is_floating_point() else v.numpy().astype(np.int64))
          for k, v in off.state_dict().items()}
    mp.model_st.save(f'{out}/w.safetensors', sd)
    fe = mp.FrontEnd(mp.mel_filters(), mp.hann_periodic(), torch.float64).eval()
    net = mp.Cnn14Net(ch=(64, 128, 256, 512, 1024, 2048), emb=2048).double().eval()
    net.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in off.state_dict().items()
                         if not k.startswith(('spectrogram', 'logmel'))})
    with torch.no_grad():
        o = off(wave)
        l32 = off.logmel_extractor(off.spectrogram_extractor(wave))
        l64 = fe(wave.double())
        e64, c64 = net(l64)
    mp.model_st.save(f'{out}/io.safetensors', {'wave': wave.numpy()})
    ref = {'logmel32': l32[:, 0].numpy(), 'emb32': o['embedding'].numpy(), 'clip32': o['clipwise_output'].numpy(),
           'logmel64': l64[:, 0].numpy(), 'emb64': e64.numpy(), 'clip64': c64.numpy()}
    np.savez(f'{out}/ref.npz', **ref)


def compare(out):
    """bench/panns_full.c's outputs against the float64 re-statement, the official float32's
    distance from it as the yardstick: within max(1e-4, 3x)."""
    ref, ours = np.load(f'{out}/ref.npz'), mp.model_st.load(f'{out}/ours.safetensors')
    ok = True
    for name, o in (('logmel', ours['logmel']), ('emb', ours['embedding']), ('clip', ours['clipwise'])):
        r64 = ref[name + '64'].astype(np.float64)
        d = np.abs(o - r64).max()
        d32 = np.abs(ref[name + '32'] - r64).max()
        tol = max(1e-4, 3 * d32)
        print(f'{name:7s} ours vs float64 {d:.3g}, official float32 vs float64 {d32:.3g} (bound {tol:.3g})')
        ok = ok and d <= tol
    print(f'ours: forward of {ours["logmel"].shape[0]} s of audio in {ours["seconds"][0]:.2f} s')
    print('OK' if ok else 'DIFFERENT')
    return 0 if ok else 1


def main():
    if len(sys.argv) == 3 and sys.argv[1] == '--compare':
        return compare(sys.argv[2])
    from panns_inference.models import Cnn14
    torch.manual_seed(9)
    off = Cnn14(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000,
                classes_num=527).eval()
    mp.randomise(off, torch.Generator().manual_seed(9))
    melw, window = mp.mel_filters(), mp.hann_periodic()
    mp.check_librosa(melw, window)
    fe = mp.FrontEnd(melw, window, torch.float32).eval()
    net = mp.Cnn14Net(ch=(64, 128, 256, 512, 1024, 2048), emb=2048).eval()
    sd = {k: v for k, v in off.state_dict().items() if not k.startswith(('spectrogram', 'logmel'))}
    net.load_state_dict(sd)
    wave = torch.tensor(mp.waves())
    with torch.no_grad():
        o = off(wave)
        lo = off.logmel_extractor(off.spectrogram_extractor(wave))
        lr = fe(wave)
        e, c = net(lr)
        e2, c2 = net(lo)  # the network alone, on the official log-mel
    dl = (lo - lr).abs().max().item()
    de, dc = (o['embedding'] - e).abs().max().item(), (o['clipwise_output'] - c).abs().max().item()
    de2 = (o['embedding'] - e2).abs().max().item()
    print(f'official vs re-statement (float32): log-mel {dl:.3g} dB, embedding {de:.3g} '
          f'(network alone {de2:.3g}, scale {o["embedding"].abs().max().item():.3g}), clipwise {dc:.3g}')
    ok = dl < 2e-3 and de2 == 0 and de < 1e-3 * max(1.0, o['embedding'].abs().max().item()) and dc < 1e-4
    print('OK' if ok else 'DIFFERENT')
    if len(sys.argv) == 3 and sys.argv[1] == '--write':
        write_case(sys.argv[2], off, wave)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
