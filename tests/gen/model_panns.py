"""tests/gen/model_panns.py: PyTorch reference of PANNs Cnn14_16k (front end and network) and
the fixtures of tests/test_model_panns.c.

Run from the repository root with Debian's torch:  /usr/bin/python3 tests/gen/model_panns.py
The official code (qiuqiangkong/audioset_tagging_cnn pytorch/models.py Cnn14_16k, ConvBlock;
torchlibrosa 0.1.0 stft.STFT, Spectrogram, LogmelFilterBank; librosa.filters.mel) needs
librosa, which Debian's python lacks (scipy, numba); so this file re-states it line by line
in torch, and the Slaney mel filter bank is written here without librosa (librosa.filters.mel,
htk=False, norm='slaney'). When librosa is importable (a venv with --system-site-packages and
`pip install librosa==0.10.2.post1 torchlibrosa==0.1.0`), the filter bank and the window are
also checked against librosa's own, and the script stops on a difference.

What is computed as the official code does it:
  STFT       torchlibrosa: conv1d of the reflect-padded chunk (256 each side) with the DFT
             matrix times the periodic Hann window (real and imaginary kernels), stride 160
  power      real^2 + imag^2;  mel: matmul with melW [257,64];  log: 10 log10(clamp(., 1e-10))
  network    bn0 over mel bins (transpose, BatchNorm2d, transpose), 6 ConvBlocks (conv-bn-relu
             x2, avg_pool2d 2x2; block 6 1x1), dropout off (eval), mean over mel, max + mean
             over time, relu(fc1) = embedding, sigmoid(fc_audioset) = clipwise_output
Inputs: 2 s of 16 kHz audio cut into 1-second chunks (C3N's loader: wav.view(5, -1)), a batch
of 2 chunks: noise + a 440 Hz tone, and a quiet chirp (a quiet frame stresses the log).
Weights: the official architecture at reduced widths (blocks 4,8,8,16,16,32, fc1 32, 527
classes; the C code reads widths from shapes), random with seed 5, BatchNorm running
statistics random (so eval BatchNorm is tested), plus the checkpoint's non-parameters
(num_batches_tracked as int64, logmel_extractor.melW) that the loader must accept.
Every output is computed in float32 (PyTorch's own error) and float64 (the reference).

Writes tests/fixtures/model/
  panns_small.weights.safetensors   official names
  panns_small.io.safetensors        wave [2,16000]; melW [257,64] (float64 formula, rounded);
                                    logmel64 [2,101,64]; logmel_d32 [1] = max |logmel32 - logmel64|
                                    logmel_in [2,101,64] = float32(logmel64) (the network input);
                                    emb64 [2,32], clip64 [2,527] (float64 net on logmel_in);
                                    emb_d32 [1], clip_d32 [1] (float32 net's max distance from them)
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402

SR, NFFT, HOP, MELS, FMIN, FMAX = 16000, 512, 160, 64, 50.0, 8000.0
CH, EMB, CLASSES = (4, 8, 8, 16, 16, 32), 32, 527


def hz_to_mel(f):
    """librosa.hz_to_mel (Slaney): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep,
                    f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters():
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm='slaney') in float64."""
    fftfreqs = np.linspace(0, SR / 2, 1 + NFFT // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    w = np.zeros((MELS, 1 + NFFT // 2))
    for i in range(MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:MELS + 2] - mel_f[:MELS])
    return w * enorm[:, None]


def hann_periodic():
    n = np.arange(NFFT)
    return 0.5 - 0.5 * np.cos(2 * np.pi * n / NFFT)


def check_librosa(melw, window):
    try:
        import librosa
    except ImportError:
        print('librosa not importable: filter bank and window checked by formula only')
        return
    ref = librosa.filters.mel(sr=SR, n_fft=NFFT, n_mels=MELS, fmin=FMIN, fmax=FMAX, dtype=np.float64)
    d = np.abs(ref - melw).max()
    dw = np.abs(librosa.filters.get_window('hann', NFFT, fftbins=True) - window).max()
    print(f'librosa {librosa.__version__}: mel filters max |d| {d:.3g}, window {dw:.3g}')
    assert d < 1e-12 and dw < 1e-15, 'the librosa-free mel filters differ from librosa'


class FrontEnd(nn.Module):
    """torchlibrosa Spectrogram (STFT as conv1d) + LogmelFilterBank, Cnn14_16k's settings."""

    def __init__(self, melw, window, dtype):
        super().__init__()
        x, y = np.meshgrid(np.arange(NFFT), np.arange(NFFT))
        # torchlibrosa builds W = omega ** (x*y); the same matrix with the exponent reduced
        # mod NFFT (omega ** NFFT = 1) is exact in float64 (the power of a rounded omega to
        # 130k loses ~1e-11, which shows as 1e-4 dB on quiet bins of loud frames)
        W = np.exp(-2j * np.pi * ((x * y) % NFFT) / NFFT)[:, :NFFT // 2 + 1] * window[:, None]
        self.conv_real = nn.Conv1d(1, NFFT // 2 + 1, NFFT, stride=HOP, bias=False, dtype=dtype)
        self.conv_imag = nn.Conv1d(1, NFFT // 2 + 1, NFFT, stride=HOP, bias=False, dtype=dtype)
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.tensor(np.real(W).T[:, None, :]))
            self.conv_imag.weight.copy_(torch.tensor(np.imag(W).T[:, None, :]))
        self.melW = nn.Parameter(torch.tensor(melw.T, dtype=dtype), requires_grad=False)

    def forward(self, wave):  # wave [N, S] -> [N, 1, T, 64]
        x = F.pad(wave[:, None, :], (NFFT // 2, NFFT // 2), mode='reflect')
        real = self.conv_real(x)[:, None, :, :].transpose(2, 3)
        imag = self.conv_imag(x)[:, None, :, :].transpose(2, 3)
        spec = (real ** 2 + imag ** 2) ** (2.0 / 2.0)
        mel = torch.matmul(spec, self.melW)
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10, max=np.inf)) - 10.0 * np.log10(max(1e-10, 1.0))


class ConvBlock(nn.Module):
    """audioset_tagging_cnn pytorch/models.py ConvBlock."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, (3, 3), (1, 1), (1, 1), bias=False)
        self.conv2 = nn.Conv2d(cout, cout, (3, 3), (1, 1), (1, 1), bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x, pool_size=(2, 2), pool_type='avg'):
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        if pool_type == 'avg':
            x = F.avg_pool2d(x, kernel_size=pool_size)
        return x


class Cnn14Net(nn.Module):
    """Cnn14_16k after the front end (its forward from x = logmel on), eval mode."""

    def __init__(self, ch=CH, emb=EMB):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(MELS)
        cin = 1
        for b, c in enumerate(ch):
            setattr(self, f'conv_block{b + 1}', ConvBlock(cin, c))
            cin = c
        self.fc1 = nn.Linear(cin, emb, bias=True)
        self.fc_audioset = nn.Linear(emb, CLASSES, bias=True)

    def forward(self, x):  # x [N, 1, T, 64]
        x = x.transpose(1, 3)
        x = self.bn0(x)
        x = x.transpose(1, 3)
        for b in range(6):
            x = getattr(self, f'conv_block{b + 1}')(x, pool_size=(2, 2) if b < 5 else (1, 1), pool_type='avg')
            x = F.dropout(x, p=0.2, training=self.training)
        x = torch.mean(x, dim=3)
        (x1, _) = torch.max(x, dim=2)
        x2 = torch.mean(x, dim=2)
        x = x1 + x2
        x = F.dropout(x, p=0.5, training=self.training)
        x = F.relu_(self.fc1(x))
        embedding = F.dropout(x, p=0.5, training=self.training)
        clipwise_output = torch.sigmoid(self.fc_audioset(x))
        return embedding, clipwise_output


def randomise(net, g):
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith(('spectrogram_extractor.', 'logmel_extractor.')):
                continue  # the official model's frozen front end
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * np.sqrt(2.0 / fan_in))
            elif name.endswith('weight'):
                p.copy_(0.5 + torch.rand(p.shape, generator=g, dtype=torch.float64))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=torch.float64))
        for name, b in net.named_buffers():
            if name == 'bn0.running_mean':
                b.copy_(-40 + 20 * torch.rand(b.shape, generator=g, dtype=torch.float64))
            elif name == 'bn0.running_var':
                b.copy_(50 + 150 * torch.rand(b.shape, generator=g, dtype=torch.float64))
            elif name.endswith('running_mean'):
                b.copy_(0.2 * torch.randn(b.shape, generator=g, dtype=torch.float64))
            elif name.endswith('running_var'):
                b.copy_(0.5 + 1.5 * torch.rand(b.shape, generator=g, dtype=torch.float64))
            elif name.endswith('num_batches_tracked'):
                b.fill_(1234)


def waves():
    rng = np.random.default_rng(3)
    t = np.arange(SR) / SR
    a = 0.1 * rng.standard_normal(SR) + 0.3 * np.sin(2 * np.pi * 440 * t)
    b = 0.2 * np.sin(2 * np.pi * (200 + 3000 * t) * t) + 1e-3 * rng.standard_normal(SR)
    b[4000:6000] *= 1e-4  # a quiet stretch
    return np.stack([a, b]).astype(np.float32)


def main():
    out = 'tests/fixtures/model'
    os.makedirs(out, exist_ok=True)
    melw, window = mel_filters(), hann_periodic()
    check_librosa(melw, window)
    wave = waves()
    fe64 = FrontEnd(melw, window, torch.float64).eval()
    fe32 = FrontEnd(melw, window, torch.float32).eval()  # melW float32, as librosa's default
    with torch.no_grad():
        lm64 = fe64(torch.tensor(wave, dtype=torch.float64))
        lm32 = fe32(torch.tensor(wave))
    lm_d32 = (lm32.double() - lm64).abs().max().item()
    net = Cnn14Net().double().eval()
    randomise(net, torch.Generator().manual_seed(5))
    net32 = Cnn14Net().float().eval()
    net32.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in net.state_dict().items()})
    x = lm64.float()  # the network's input, as our float32 front end would give it
    with torch.no_grad():
        e64, c64 = net(x.double())
        e32, c32 = net32(x)
    e_d32 = (e32.double() - e64).abs().max().item()
    c_d32 = (c32.double() - c64).abs().max().item()
    print(f'PyTorch float32 vs float64: logmel {lm_d32:.3g}, embedding {e_d32:.3g}, clipwise {c_d32:.3g}')
    print(f'logmel range {lm64.min().item():.1f}..{lm64.max().item():.1f} dB, '
          f'embedding max {e64.abs().max().item():.3g}, clipwise {c64.min().item():.3g}..{c64.max().item():.3g}')
    sd = {k: (v.numpy().astype(np.float32) if v.is_floating_point() else v.numpy().astype(np.int64))
          for k, v in net.state_dict().items()}
    sd['logmel_extractor.melW'] = melw.T.astype(np.float32)
    model_st.save(f'{out}/panns_small.weights.safetensors', sd, {'source': 'tests/gen/model_panns.py'})
    io = {'wave': wave, 'melW': melw.T.astype(np.float32),
          'logmel64': lm64[:, 0].numpy().astype(np.float32), 'logmel_d32': np.array([lm_d32], np.float32),
          'logmel_in': x[:, 0].numpy(), 'emb64': e64.numpy().astype(np.float32),
          'clip64': c64.numpy().astype(np.float32), 'emb_d32': np.array([e_d32], np.float32),
          'clip_d32': np.array([c_d32], np.float32)}
    model_st.save(f'{out}/panns_small.io.safetensors', io, {'source': 'tests/gen/model_panns.py'})


if __name__ == '__main__':
    main()
