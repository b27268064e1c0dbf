"""tests/gen/features_logmel.py: numpy reference of the VGGish log-mel front end (DESIGN §5),
written from DESIGN §5 and torchvggish's mel_features.py / vggish_input.py (same formulas,
float64 throughout), and the fixtures of tests/test_features_logmel.c.

Run from the repository root with Debian's python:  /usr/bin/python3 tests/gen/features_logmel.py
Writes tests/fixtures/features/logmel_<case>.safetensors, each with
  wave      [S]        float32 input samples (16 kHz, [-1, 1])
  stream    [N,96,64]  official examples (96 frames at hop 96, over the whole wave)
  second    [M,96,64]  one example per whole second (first 96 frames of each second alone)
Cases: 'tones' (two sines, a chirp and a silent gap, 2.1 s) and 'real' (1.1 s of a real dog
recording from ~/.cache/avs/media/sounds/dog/Dog1.wav, s16 22.05 kHz, linearly resampled to
16 kHz and re-quantised to s16; if that file is missing, a noisy tone stands in and the
metadata says so).
Also importable: waveform_to_examples(wave, policy) for bench/ peers; `python3
features_logmel.py bench` times it on 60 s of noise (the peer of `avs-model bench logmel`).
"""
import os
import sys
import wave as wavmod

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_st  # noqa: E402

RATE, WIN, HOP, NFFT, MELS, LO, HI, OFFSET, EX = 16000, 400, 160, 512, 64, 125.0, 7500.0, 0.01, 96


def frame(data, length, hop):
    n = 1 + (data.shape[0] - length) // hop
    if n < 1:
        return np.zeros((0, length) + data.shape[1:], data.dtype)
    idx = np.arange(length)[None, :] + hop * np.arange(n)[:, None]
    return data[idx]


def periodic_hann(n):
    return 0.5 - 0.5 * np.cos(2 * np.pi / n * np.arange(n))


def hz_to_mel(hz):
    return 1127.0 * np.log(1.0 + hz / 700.0)


def mel_matrix(nbins=NFFT // 2 + 1):
    bins_mel = hz_to_mel(np.linspace(0.0, RATE / 2.0, nbins))
    edges = np.linspace(hz_to_mel(LO), hz_to_mel(HI), MELS + 2)
    m = np.empty((nbins, MELS))
    for i in range(MELS):
        lo, c, up = edges[i:i + 3]
        m[:, i] = np.maximum(0.0, np.minimum((bins_mel - lo) / (c - lo), (up - bins_mel) / (up - c)))
    m[0, :] = 0.0  # HTK: no DC
    return m


def log_mel(x):
    frames = frame(np.asarray(x, np.float64), WIN, HOP)
    spec = np.abs(np.fft.rfft(frames * periodic_hann(WIN), NFFT))
    return np.log(spec @ mel_matrix() + OFFSET)


def waveform_to_examples(x, policy='stream'):
    if policy == 'second':
        secs = len(x) // RATE
        return np.stack([log_mel(x[k * RATE:(k + 1) * RATE])[:EX] for k in range(secs)])
    return frame(log_mel(x), EX, EX)


def tones():
    t = np.arange(int(2.1 * RATE)) / RATE
    x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t)
    x += 0.2 * np.sin(2 * np.pi * (200 + 1500 * t) * t)
    x[int(0.5 * RATE):int(0.7 * RATE)] = 0.0  # silence: log(0 + 0.01) region
    return np.round(x * 16384) / 32768.0


def real():
    p = os.path.expanduser('~/.cache/avs/media/sounds/dog/Dog1.wav')
    n = int(1.1 * RATE)
    if not os.path.exists(p):
        rng = np.random.default_rng(3)
        t = np.arange(n) / RATE
        return np.round((0.3 * np.sin(2 * np.pi * 700 * t) + 0.05 * rng.standard_normal(n)) * 32767) / 32768.0, 'tone stand-in'
    with wavmod.open(p) as w:
        sr, ch = w.getframerate(), w.getnchannels()
        d = np.frombuffer(w.readframes(w.getnframes()), '<i2').astype(np.float64).reshape(-1, ch).mean(1)
    src_t = np.arange(len(d)) / sr
    y = np.interp(np.arange(n) / RATE, src_t, d)
    return np.clip(np.round(y), -32768, 32767) / 32768.0, 'Dog1.wav'


def main():
    out = 'tests/fixtures/features'
    os.makedirs(out, exist_ok=True)
    r, src = real()
    for name, x, meta in (('tones', tones(), 'synthetic'), ('real', r, src)):
        x = x.astype(np.float32)
        model_st.save(f'{out}/logmel_{name}.safetensors',
                      {'wave': x, 'stream': waveform_to_examples(x, 'stream').astype(np.float32),
                       'second': waveform_to_examples(x, 'second').astype(np.float32)},
                      {'source': meta, 'generator': 'tests/gen/features_logmel.py'})


def bench(runs=5):
    import time
    x = (np.random.default_rng(1).uniform(-0.3, 0.3, 60 * RATE)).astype(np.float32)
    best = 1e30
    for r in range(runs + 1):
        t = time.perf_counter()
        waveform_to_examples(x)
        if r:
            best = min(best, time.perf_counter() - t)
    print(f'numpy_logmel_seconds={best:.5f} audio_seconds=60')


if __name__ == '__main__':
    if sys.argv[1:2] == ['bench']:
        bench(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    else:
        main()
