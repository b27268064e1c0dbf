/* features/panns_mel.c: PANNs Cnn14_16k's log-mel front end (panns_mel.h; ref: torchlibrosa
 * stft.Spectrogram, stft.LogmelFilterBank, librosa.filters.mel).
 *
 * Per frame:  chunk --(reflect pad 256, window)--> in [512] --(FFTW r2c)--> [257] complex
 *   --> |X|^2 --(Slaney mel rows)--> [64] --> 10 log10(max(., 1e-10)) --> out [64]. */
#include "features/panns_mel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

#include "features/logmel.h"

#define FMIN 50.0
#define FMAX 8000.0
#define AMIN 1e-10
#define PAD (AVS_PANNS_MEL_FFT / 2)

/* Slaney's mel scale (librosa.hz_to_mel, htk=False): linear below 1 kHz, log above. */
static double hz_to_mel(double hz)
{
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, logstep = log(6.4) / 27.0;
    return hz >= min_log_hz ? min_log_hz / f_sp + log(hz / min_log_hz) / logstep : hz / f_sp;
}

static double mel_to_hz(double mel)
{
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp,
                 logstep = log(6.4) / 27.0;
    return mel >= min_log_mel ? min_log_hz * exp(logstep * (mel - min_log_mel)) : f_sp * mel;
}

/* ref: librosa.filters.mel (norm='slaney'): triangles between mel-spaced edges evaluated at
 * the bin frequencies linspace(0, sr/2, n_fft/2+1), each scaled by 2 / (its width in Hz). */
void avs_panns_mel_filters(double *fb, int sr, int n_fft, int bands, double f_lo, double f_hi)
{
    int nb = n_fft / 2 + 1;
    double *edge = malloc((size_t)(bands + 2) * sizeof(double));
    double mlo = hz_to_mel(f_lo), mhi = hz_to_mel(f_hi);
    for (int i = 0; i < bands + 2; i++)
        edge[i] = mel_to_hz(mlo + (mhi - mlo) * i / (bands + 1));
    for (int b = 0; b < bands; b++) {
        double d0 = edge[b + 1] - edge[b], d1 = edge[b + 2] - edge[b + 1];
        double enorm = 2.0 / (edge[b + 2] - edge[b]);
        for (int k = 0; k < nb; k++) {
            double f = (double)sr / 2 * k / (nb - 1);
            double lower = (f - edge[b]) / d0, upper = (edge[b + 2] - f) / d1;
            fb[(size_t)b * nb + k] = fmax(0.0, fmin(lower, upper)) * enorm;
        }
    }
    free(edge);
}

int avs_panns_mel_init(struct avs_panns_mel *m, struct avs_err *err)
{
    memset(m, 0, sizeof *m);
    m->in = fftw_malloc(AVS_PANNS_MEL_FFT * sizeof(double));
    m->spec = fftw_malloc(AVS_PANNS_MEL_BINS * 2 * sizeof(double));
    AVS_ASSERT(m->in && m->spec);
    int wisdom;
    m->plan = avs_logmel_plan512(m->in, m->spec, &wisdom);
    if (!m->plan) {
        avs_panns_mel_free(m);
        return avs_err_set(err, "PANNs log-mel: FFTW3 could not plan a %d-point real FFT "
                           "(libfftw3 broken? reinstall libfftw3-double3)", AVS_PANNS_MEL_FFT);
    }
    for (int i = 0; i < AVS_PANNS_MEL_FFT; i++) /* periodic Hann (fftbins=True) */
        m->window[i] = 0.5 - 0.5 * cos(2.0 * M_PI * i / AVS_PANNS_MEL_FFT);
    avs_panns_mel_filters(&m->fb[0][0], AVS_PANNS_MEL_RATE, AVS_PANNS_MEL_FFT,
                          AVS_PANNS_MEL_BANDS, FMIN, FMAX);
    for (int b = 0; b < AVS_PANNS_MEL_BANDS; b++) {
        m->lo[b] = AVS_PANNS_MEL_BINS, m->hi[b] = 0;
        for (int k = 0; k < AVS_PANNS_MEL_BINS; k++)
            if (m->fb[b][k] > 0) {
                m->lo[b] = k < m->lo[b] ? k : m->lo[b];
                m->hi[b] = k + 1;
            }
        if (m->hi[b] == 0)
            m->lo[b] = 0;
    }
    return 0;
}

void avs_panns_mel_free(struct avs_panns_mel *m)
{
    if (!m)
        return;
    avs_logmel_plan512_free(m->plan);
    fftw_free(m->in);
    fftw_free(m->spec);
    m->plan = NULL, m->in = m->spec = NULL;
}

int64_t avs_panns_mel_num_frames(int64_t S)
{
    return 1 + S / AVS_PANNS_MEL_HOP;
}

/* Sample p of the chunk padded by reflection (numpy/torch 'reflect': the edge not repeated). */
static double padded(const float *wave, int64_t S, int64_t p)
{
    int64_t i = p - PAD;
    if (i < 0)
        i = -i;
    if (i >= S)
        i = 2 * (S - 1) - i;
    return wave[i];
}

void avs_panns_mel_chunk(struct avs_panns_mel *m, float *out, const float *wave, int64_t S)
{
    AVS_ASSERT(S > PAD);
    int64_t F = avs_panns_mel_num_frames(S);
    double pw[AVS_PANNS_MEL_BINS];
    for (int64_t f = 0; f < F; f++) {
        int64_t p0 = f * AVS_PANNS_MEL_HOP;
        for (int i = 0; i < AVS_PANNS_MEL_FFT; i++)
            m->in[i] = m->window[i] * padded(wave, S, p0 + i);
        fftw_execute_dft_r2c((fftw_plan)m->plan, m->in, (fftw_complex *)m->spec);
        for (int k = 0; k < AVS_PANNS_MEL_BINS; k++)
            pw[k] = m->spec[2 * k] * m->spec[2 * k] + m->spec[2 * k + 1] * m->spec[2 * k + 1];
        for (int b = 0; b < AVS_PANNS_MEL_BANDS; b++) {
            double s = 0;
            for (int k = m->lo[b]; k < m->hi[b]; k++)
                s += m->fb[b][k] * pw[k];
            out[f * AVS_PANNS_MEL_BANDS + b] = (float)(10.0 * log10(s > AMIN ? s : AMIN));
        }
    }
}

void avs_panns_mel_seconds(struct avs_panns_mel *m, float *out, const float *wave, int n)
{
    for (int k = 0; k < n; k++)
        avs_panns_mel_chunk(m, out + (size_t)k * AVS_PANNS_MEL_EXAMPLE,
                            wave + (size_t)k * AVS_PANNS_MEL_RATE, AVS_PANNS_MEL_RATE);
}
