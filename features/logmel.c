/* features/logmel.c: VGGish log-mel front end (see logmel.h; ref: torchvggish mel_features). */
#include "features/logmel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>
#include <libavutil/mem.h>
#include <libavutil/tx.h>
#include <omp.h>

#define LOG_OFFSET 0.01
#define MEL_LO_HZ 125.0
#define MEL_HI_HZ 7500.0

/* HTK mel scale, ref: mel_features.hertz_to_mel. */
static double hz_to_mel(double hz)
{
    return 1127.0 * log(1.0 + hz / 700.0);
}

/* ref: mel_features.spectrogram_to_mel_matrix: triangles between linspace'd mel edges,
 * evaluated at the mel of each bin centre linspace(0, nyquist, 257); bin 0 (DC) zeroed. */
static void build_mel(struct avs_logmel *m)
{
    double nyq = AVS_LOGMEL_RATE / 2.0, mlo = hz_to_mel(MEL_LO_HZ), mhi = hz_to_mel(MEL_HI_HZ);
    double edges[AVS_LOGMEL_MELS + 2], bin_mel[AVS_LOGMEL_BINS];
    for (int i = 0; i < AVS_LOGMEL_MELS + 2; i++)
        edges[i] = mlo + (mhi - mlo) * i / (AVS_LOGMEL_MELS + 1);
    for (int k = 0; k < AVS_LOGMEL_BINS; k++)
        bin_mel[k] = hz_to_mel(nyq * k / (AVS_LOGMEL_BINS - 1));
    for (int b = 0; b < AVS_LOGMEL_MELS; b++) {
        double l = edges[b], c = edges[b + 1], u = edges[b + 2];
        m->lo[b] = AVS_LOGMEL_BINS, m->hi[b] = 0;
        for (int k = 0; k < AVS_LOGMEL_BINS; k++) {
            double lower = (bin_mel[k] - l) / (c - l), upper = (u - bin_mel[k]) / (u - c);
            double w = fmax(0.0, fmin(lower, upper));
            m->mel[b][k] = k == 0 ? 0.0 : w;
            if (m->mel[b][k] > 0) {
                if (k < m->lo[b])
                    m->lo[b] = k;
                m->hi[b] = k + 1;
            }
        }
        if (m->hi[b] == 0)
            m->lo[b] = 0;
    }
}

static int fft_init(struct avs_logmel_fft *f, struct avs_err *err)
{
    av_tx_fn fn = NULL;
    double scale = 1.0;
    int r = av_tx_init(&f->tx, &fn, AV_TX_DOUBLE_RDFT, 0, AVS_LOGMEL_FFT, &scale, 0);
    if (r < 0) {
        char buf[128];
        av_strerror(r, buf, sizeof buf);
        return avs_err_set(err, "log-mel: cannot set up a %d-point real FFT with libavutil's av_tx "
                           "(%s); libavutil >= 57.23 (FFmpeg 5.1) is needed", AVS_LOGMEL_FFT, buf);
    }
    f->tx_fn = fn;
    f->in = av_mallocz(AVS_LOGMEL_FFT * sizeof(double));
    f->spec = av_malloc((2 * AVS_LOGMEL_BINS + 2) * sizeof(double));
    AVS_ASSERT(f->in && f->spec);
    return 0;
}

int avs_logmel_init(struct avs_logmel *m, struct avs_err *err)
{
    memset(m, 0, sizeof *m);
    int nt = omp_get_max_threads();
    m->nthreads = nt < 1 ? 1 : nt > AVS_LOGMEL_MAXT ? AVS_LOGMEL_MAXT : nt;
    for (int t = 0; t < m->nthreads; t++)
        if (fft_init(&m->fft[t], err)) {
            avs_logmel_free(m);
            return -1;
        }
    /* periodic Hann, ref: mel_features.periodic_hann */
    for (int i = 0; i < AVS_LOGMEL_WIN; i++)
        m->window[i] = 0.5 - 0.5 * cos(2.0 * M_PI / AVS_LOGMEL_WIN * i);
    build_mel(m);
    return 0;
}

void avs_logmel_free(struct avs_logmel *m)
{
    if (!m)
        return;
    for (int t = 0; t < AVS_LOGMEL_MAXT; t++) {
        av_tx_uninit(&m->fft[t].tx);
        av_freep(&m->fft[t].in);
        av_freep(&m->fft[t].spec);
    }
}

int64_t avs_logmel_num_frames(int64_t S)
{
    return S < AVS_LOGMEL_WIN ? 0 : 1 + (S - AVS_LOGMEL_WIN) / AVS_LOGMEL_HOP;
}

/* One frame starting at x[0] (400 samples) -> 64 log-mel values. */
static void one_frame(const struct avs_logmel *m, const struct avs_logmel_fft *f, float *out,
                      const float *x)
{
    for (int i = 0; i < AVS_LOGMEL_WIN; i++)
        f->in[i] = (double)x[i] * m->window[i];
    memset(f->in + AVS_LOGMEL_WIN, 0, (AVS_LOGMEL_FFT - AVS_LOGMEL_WIN) * sizeof(double));
    f->tx_fn(f->tx, f->spec, f->in, sizeof(double));
    double mag[AVS_LOGMEL_BINS];
    const double *sp = f->spec;
    /* |X| as sqrt(re^2 + im^2): within an ulp of numpy's hypot, and 3x faster */
    for (int k = 0; k < AVS_LOGMEL_BINS; k++)
        mag[k] = sqrt(sp[2 * k] * sp[2 * k] + sp[2 * k + 1] * sp[2 * k + 1]);
    for (int b = 0; b < AVS_LOGMEL_MELS; b++) {
        double s = 0;
        for (int k = m->lo[b]; k < m->hi[b]; k++)
            s += mag[k] * m->mel[b][k];
        out[b] = (float)log(s + LOG_OFFSET);
    }
}

static void frames_with(const struct avs_logmel *m, const struct avs_logmel_fft *fft, float *out,
                        int64_t F, const float *wave)
{
    for (int64_t f = 0; f < F; f++)
        one_frame(m, fft, out + f * AVS_LOGMEL_MELS, wave + f * AVS_LOGMEL_HOP);
}

void avs_logmel_frames(struct avs_logmel *m, float *out, int64_t F, const float *wave, int64_t S)
{
    AVS_ASSERT(F <= avs_logmel_num_frames(S));
    frames_with(m, &m->fft[0], out, F, wave);
}

int64_t avs_logmel_count(int64_t S, enum avs_logmel_policy policy)
{
    if (policy == AVS_LOGMEL_SECOND)
        return S / AVS_LOGMEL_RATE;
    return avs_logmel_num_frames(S) / AVS_LOGMEL_FRAMES;
}

int avs_logmel_examples(struct avs_logmel *m, float *out, int64_t n, const float *wave, int64_t S,
                        enum avs_logmel_policy policy, struct avs_err *err)
{
    AVS_ASSERT(n >= 1);
    int64_t have = avs_logmel_count(S, policy);
    if (have < 1)
        return avs_err_set(err, "log-mel: a wave of %lld samples holds no whole example (%s policy "
                           "needs at least %d samples at 16 kHz)", (long long)S,
                           avs_logmel_policy_name(policy),
                           policy == AVS_LOGMEL_SECOND ? AVS_LOGMEL_RATE
                                                       : AVS_LOGMEL_EXAMPLE_HOP + AVS_LOGMEL_WIN - AVS_LOGMEL_HOP);
    int64_t k_end = have < n ? have : n;
    int nt = m->nthreads < omp_get_max_threads() ? m->nthreads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (k_end > 1 && nt > 1)
    for (int64_t k = 0; k < k_end; k++) {
        int64_t start = policy == AVS_LOGMEL_SECOND ? k * AVS_LOGMEL_RATE : k * AVS_LOGMEL_EXAMPLE_HOP;
        frames_with(m, &m->fft[omp_get_thread_num()], out + k * AVS_LOGMEL_EXAMPLE,
                    AVS_LOGMEL_FRAMES, wave + start);
    }
    for (int64_t k = k_end; k < n; k++)
        memcpy(out + k * AVS_LOGMEL_EXAMPLE, out + (k_end - 1) * AVS_LOGMEL_EXAMPLE,
               AVS_LOGMEL_EXAMPLE * sizeof(float));
    return 0;
}

const char *avs_logmel_policy_name(enum avs_logmel_policy p)
{
    return p == AVS_LOGMEL_SECOND ? "second" : "stream";
}

int avs_logmel_policy_parse(const char *s)
{
    if (!strcmp(s, "stream"))
        return AVS_LOGMEL_STREAM;
    if (!strcmp(s, "second"))
        return AVS_LOGMEL_SECOND;
    return -1;
}
