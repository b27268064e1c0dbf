/* features/logmel.c: VGGish log-mel front end (see logmel.h; ref: torchvggish mel_features).
 *
 * Per frame:  wave --(window, double)--> in [512] --(FFTW r2c)--> spec [257] complex
 *   --> |X| [257] float --(mel rows: sparse, or dense blocks of 8 bands)--> [64]
 *   --> log(. + 0.01) --> out [64]. */
#include "features/logmel.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>
#include <omp.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#if defined(__GLIBC__) && defined(__x86_64__) && !defined(__FAST_MATH__)
/* glibc's libmvec has vector logf (_ZGVbN4v_logf, ...); math.h declares it only under
 * -ffast-math (errno), which we do not want elsewhere. log of a positive argument never sets
 * errno, so the SIMD version is what we want here. */
__attribute__((simd("notinbranch"))) float logf(float);
#endif

#define LOG_OFFSET 0.01f
#define MEL_LO_HZ 125.0
#define MEL_HI_HZ 7500.0

/* _mm256_hadd_ps in magnitudes_avx2 leaves the 8 bins of a group in this order */
static const int hadd_order[8] = {0, 1, 4, 5, 2, 3, 6, 7};

/* FFTW's planner is not thread-safe; plan making and destruction go through this lock. */
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

/* HTK mel scale, ref: mel_features.hertz_to_mel. */
static double hz_to_mel(double hz)
{
    return 1127.0 * log(1.0 + hz / 700.0);
}

/* ref: mel_features.spectrogram_to_mel_matrix: triangles between linspace'd mel edges,
 * evaluated at the mel of each bin centre linspace(0, nyquist, 257); bin 0 (DC) zeroed.
 * Stored as sparse rows: band b's weights for bins [lo[b], hi[b]) at wt[off[b]...]. */
static void build_mel(struct avs_logmel *m)
{
    double nyq = AVS_LOGMEL_RATE / 2.0, mlo = hz_to_mel(MEL_LO_HZ), mhi = hz_to_mel(MEL_HI_HZ);
    double edges[AVS_LOGMEL_MELS + 2], bin_mel[AVS_LOGMEL_BINS], w[AVS_LOGMEL_BINS];
    for (int i = 0; i < AVS_LOGMEL_MELS + 2; i++)
        edges[i] = mlo + (mhi - mlo) * i / (AVS_LOGMEL_MELS + 1);
    for (int k = 0; k < AVS_LOGMEL_BINS; k++)
        bin_mel[k] = hz_to_mel(nyq * k / (AVS_LOGMEL_BINS - 1));
    int used = 0;
    m->klo = AVS_LOGMEL_BINS, m->khi = 0;
    for (int b = 0; b < AVS_LOGMEL_MELS; b++) {
        double l = edges[b], c = edges[b + 1], u = edges[b + 2];
        m->lo[b] = AVS_LOGMEL_BINS, m->hi[b] = 0;
        for (int k = 0; k < AVS_LOGMEL_BINS; k++) {
            double lower = (bin_mel[k] - l) / (c - l), upper = (u - bin_mel[k]) / (u - c);
            w[k] = k == 0 ? 0.0 : fmax(0.0, fmin(lower, upper));
            if (w[k] > 0) {
                if (k < m->lo[b])
                    m->lo[b] = k;
                m->hi[b] = k + 1;
            }
        }
        if (m->hi[b] == 0)
            m->lo[b] = 0;
        AVS_ASSERT(used + m->hi[b] - m->lo[b] <= (int)(sizeof m->wt / sizeof m->wt[0]));
        m->off[b] = used;
        for (int k = m->lo[b]; k < m->hi[b]; k++)
            m->wt[used++] = (float)w[k];
        if (m->hi[b] > m->lo[b]) {
            m->klo = m->lo[b] < m->klo ? m->lo[b] : m->klo;
            m->khi = m->hi[b] > m->khi ? m->hi[b] : m->khi;
        }
    }
    /* The same rows as dense blocks of 8 bands for the AVX2 path, over whole groups of 8 bins
     * from klo in magnitudes_avx2's storage order: block q, position p (mag[p] holds bin
     * group(p) + hadd_order[p % 8]) -> dw[doff[q] + 8 (p - dlo[q]) + band % 8]. */
    m->khi8 = m->klo + (m->khi - m->klo + 7) / 8 * 8;
    AVS_ASSERT(m->khi8 <= AVS_LOGMEL_BINS);
    used = 0;
    for (int q = 0; q < AVS_LOGMEL_MELS / 8; q++) {
        int lo = AVS_LOGMEL_BINS, hi = 0;
        for (int b = 8 * q; b < 8 * q + 8; b++)
            if (m->hi[b] > m->lo[b]) {
                lo = m->lo[b] < lo ? m->lo[b] : lo;
                hi = m->hi[b] > hi ? m->hi[b] : hi;
            }
        if (hi < lo)
            lo = hi = m->klo;
        lo = m->klo + (lo - m->klo) / 8 * 8;
        hi = m->klo + (hi - m->klo + 7) / 8 * 8;
        m->dlo[q] = lo, m->dhi[q] = hi, m->doff[q] = used;
        AVS_ASSERT(used + 8 * (hi - lo) <= (int)(sizeof m->dw / sizeof m->dw[0]));
        for (int p = lo; p < hi; p++) {
            int k = p - (p - m->klo) % 8 + hadd_order[(p - m->klo) % 8];
            for (int j = 0; j < 8; j++) {
                int b = 8 * q + j;
                m->dw[used++] = k >= m->lo[b] && k < m->hi[b] ? m->wt[m->off[b] + k - m->lo[b]] : 0.0f;
            }
        }
    }
}

/* FFTW wisdom for the 512-point r2c, made once with FFTW_MEASURE (then FFTW_EXHAUSTIVE found
 * the same plan) on FFTW 3.3.10 with AVX: rdft2-ct-dit/8 over hc2cfdftv_8_avx and n2fv_64_avx,
 * ~20% faster than what FFTW_ESTIMATE picks (330 vs 409 ns per frame on the reference
 * machine). Wisdom fixes the algorithm, so the bits do not depend on a run's timings; an
 * FFTW that cannot use it (other version, no AVX) makes no plan from it and we estimate. */
static const char fft_wisdom[] =
    "(fftw-3.3.10 fftw_wisdom #x458a31c8 #x92381c4c #x4f974889 #xcd46f97e\n"
    "  (fftw_codelet_r2cf_8 2 #x11bdd #x11bdd #x0 #x56debc81 #xd43c01dc #x160d728d #xc9d6aa5d)\n"
    "  (fftw_codelet_hc2cfdftv_8_avx 0 #x11bdd #x11bdd #x0 #x4d4b1bfd #x8518ad3f #x36f383f1 "
    "#x5a841548)\n"
    "  (fftw_codelet_r2cfII_8 2 #x11bdd #x11bdd #x0 #x49904ba0 #xcc76e54f #xb20b28a2 #x1656eb4e)\n"
    "  (fftw_codelet_n2fv_64_avx 0 #x11bdd #x11bdd #x0 #x0325f2a8 #x09d79e92 #x087cac0f "
    "#xb9ee6d12)\n"
    ")\n";

/* One-frame r2c plan on buffers of the shape every thread uses (fftw_malloc'd, so aligned
 * alike, as new-array execution requires). Called under plan_lock. Out-of-place r2c keeps its input (the zero pad is never overwritten). */
static struct fftw_plan_s *make_plan(double *in, double *spec, int *from_wisdom)
{
    static int imported;
    if (!imported)
        imported = fftw_import_wisdom_from_string(fft_wisdom) ? 1 : -1;
    struct fftw_plan_s *p = NULL;
    if (imported > 0)
        p = fftw_plan_dft_r2c_1d(AVS_LOGMEL_FFT, in, (fftw_complex *)spec,
                                 FFTW_MEASURE | FFTW_WISDOM_ONLY);
    *from_wisdom = p != NULL;
    if (!p)
        p = fftw_plan_dft_r2c_1d(AVS_LOGMEL_FFT, in, (fftw_complex *)spec, FFTW_ESTIMATE);
    return p;
}

struct fftw_plan_s *avs_logmel_plan512(double *in, double *spec, int *from_wisdom)
{
    pthread_mutex_lock(&plan_lock);
    struct fftw_plan_s *p = make_plan(in, spec, from_wisdom);
    pthread_mutex_unlock(&plan_lock);
    return p;
}

void avs_logmel_plan512_free(struct fftw_plan_s *p)
{
    pthread_mutex_lock(&plan_lock);
    if (p)
        fftw_destroy_plan(p);
    pthread_mutex_unlock(&plan_lock);
}

int avs_logmel_init(struct avs_logmel *m, struct avs_err *err)
{
    memset(m, 0, sizeof *m);
    int nt = omp_get_max_threads();
    m->nthreads = nt < 1 ? 1 : nt > AVS_LOGMEL_MAXT ? AVS_LOGMEL_MAXT : nt;
    for (int t = 0; t < m->nthreads; t++) {
        struct avs_logmel_buf *b = &m->buf[t];
        b->in = fftw_malloc(AVS_LOGMEL_FFT * sizeof(double));
        b->spec = fftw_malloc(AVS_LOGMEL_BINS * 2 * sizeof(double));
        b->mag = fftw_malloc(AVS_LOGMEL_BINS * sizeof(float));
        AVS_ASSERT(b->in && b->spec && b->mag);
        memset(b->in, 0, AVS_LOGMEL_FFT * sizeof(double));
        memset(b->mag, 0, AVS_LOGMEL_BINS * sizeof(float));
    }
    pthread_mutex_lock(&plan_lock);
    m->plan = make_plan(m->buf[0].in, m->buf[0].spec, &m->wisdom);
    pthread_mutex_unlock(&plan_lock);
    if (!m->plan) {
        avs_logmel_free(m);
        return avs_err_set(err, "log-mel: FFTW3 could not plan a %d-point real FFT (libfftw3 "
                           "broken? reinstall libfftw3-double3)", AVS_LOGMEL_FFT);
    }
#ifdef HAVE_X86
    m->avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
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
    pthread_mutex_lock(&plan_lock);
    if (m->plan)
        fftw_destroy_plan(m->plan);
    pthread_mutex_unlock(&plan_lock);
    m->plan = NULL;
    for (int t = 0; t < AVS_LOGMEL_MAXT; t++) {
        fftw_free(m->buf[t].in);
        fftw_free(m->buf[t].spec);
        fftw_free(m->buf[t].mag);
        m->buf[t].in = m->buf[t].spec = NULL;
        m->buf[t].mag = NULL;
    }
}

int64_t avs_logmel_num_frames(int64_t S)
{
    return S < AVS_LOGMEL_WIN ? 0 : 1 + (S - AVS_LOGMEL_WIN) / AVS_LOGMEL_HOP;
}

/* mag [257]: |X| for bins [klo, khi) of one spectrum (re, im pairs); the power in double,
 * the square root in float. */
static void magnitudes(float *mag, const double *sp, int klo, int khi)
{
    for (int k = klo; k < khi; k++)
        mag[k] = sqrtf((float)(sp[2 * k] * sp[2 * k] + sp[2 * k + 1] * sp[2 * k + 1]));
}

#ifdef HAVE_X86
/* The same for the groups of 8 bins from klo up to khi8 (>= khi), the power in float
 * (relative error ~1e-7, as above); within a group, bins stay in hadd_order. */
__attribute__((target("avx2,fma"))) static void magnitudes_avx2(float *mag, const double *sp,
                                                                int klo, int khi8)
{
    for (int k = klo; k < khi8; k += 8) {
        const double *p = sp + 2 * k;
        __m256 a = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_loadu_pd(p + 4)),
                                   _mm256_cvtpd_ps(_mm256_loadu_pd(p)));      /* bins 0-3 */
        __m256 b = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_loadu_pd(p + 12)),
                                   _mm256_cvtpd_ps(_mm256_loadu_pd(p + 8)));  /* bins 4-7 */
        __m256 pw = _mm256_hadd_ps(_mm256_mul_ps(a, a), _mm256_mul_ps(b, b));
        _mm256_storeu_ps(mag + k, _mm256_sqrt_ps(pw));
    }
}
#endif

/* out [64] = log(mel . |X| + 0.01). */
static void mel_log(const struct avs_logmel *m, float *out, const float *mag)
{
    float s[AVS_LOGMEL_MELS];
    for (int b = 0; b < AVS_LOGMEL_MELS; b++) {
        const float *w = m->wt + m->off[b] - m->lo[b];
        float acc = 0;
        for (int k = m->lo[b]; k < m->hi[b]; k++)
            acc += w[k] * mag[k];
        s[b] = acc + LOG_OFFSET;
    }
#pragma omp simd
    for (int b = 0; b < AVS_LOGMEL_MELS; b++)
        out[b] = logf(s[b]);
}

/* buf->spec [257] = FFT of the windowed frame at x. */
static void window_fft(const struct avs_logmel *m, const struct avs_logmel_buf *buf, const float *x)
{
#pragma omp simd
    for (int i = 0; i < AVS_LOGMEL_WIN; i++)
        buf->in[i] = (double)x[i] * m->window[i];
    fftw_execute_dft_r2c(m->plan, buf->in, (fftw_complex *)buf->spec);
}

/* out [64] of the frame at x, plain C. */
static void frame_plain(const struct avs_logmel *m, const struct avs_logmel_buf *buf, float *out,
                        const float *x)
{
    window_fft(m, buf, x);
    magnitudes(buf->mag, buf->spec, m->klo, m->khi);
    mel_log(m, out, buf->mag);
}

#ifdef HAVE_X86
/* out [64] of one frame: the mel sums 8 bands at a time from the dense blocks (each bin's
 * |X| broadcast, times the block's 8 weights of that bin), then logf 8-wide (libmvec). */
__attribute__((target("avx2,fma"))) static void frame_avx2(const struct avs_logmel *m,
                                                           const struct avs_logmel_buf *buf,
                                                           float *out, const float *x)
{
    window_fft(m, buf, x);
    magnitudes_avx2(buf->mag, buf->spec, m->klo, m->khi8);
    float s[AVS_LOGMEL_MELS];
    for (int q = 0; q < AVS_LOGMEL_MELS / 8; q++) {
        const float *w = m->dw + m->doff[q];
        __m256 a0 = _mm256_set1_ps(LOG_OFFSET), a1 = _mm256_setzero_ps();
        for (int k = m->dlo[q]; k < m->dhi[q]; k += 2, w += 16) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(buf->mag + k), _mm256_loadu_ps(w), a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(buf->mag + k + 1), _mm256_loadu_ps(w + 8), a1);
        }
        _mm256_storeu_ps(s + 8 * q, _mm256_add_ps(a0, a1));
    }
#pragma omp simd
    for (int b = 0; b < AVS_LOGMEL_MELS; b++)
        out[b] = logf(s[b]);
}
#endif

/* out [F,64]: frame f starts at wave + 160 f. */
static void frames_with(const struct avs_logmel *m, const struct avs_logmel_buf *buf, float *out,
                        int64_t F, const float *wave)
{
    for (int64_t f = 0; f < F; f++) {
        float *o = out + f * AVS_LOGMEL_MELS;
        const float *x = wave + f * AVS_LOGMEL_HOP;
#ifdef HAVE_X86
        if (m->avx2) {
            frame_avx2(m, buf, o, x);
            continue;
        }
#endif
        frame_plain(m, buf, o, x);
    }
}

void avs_logmel_frames(struct avs_logmel *m, float *out, int64_t F, const float *wave, int64_t S)
{
    AVS_ASSERT(F <= avs_logmel_num_frames(S));
    frames_with(m, &m->buf[0], out, F, wave);
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
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (k_end > 1 && nt > 1)
    for (int64_t k = 0; k < k_end; k++) {
        int64_t start = policy == AVS_LOGMEL_SECOND ? k * AVS_LOGMEL_RATE : k * AVS_LOGMEL_EXAMPLE_HOP;
        frames_with(m, &m->buf[omp_get_thread_num()], out + k * AVS_LOGMEL_EXAMPLE,
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
