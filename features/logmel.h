/* features/logmel.h: the VGGish log-mel front end (DESIGN §5).
 *
 *   struct avs_logmel m;
 *   if (avs_logmel_init(&m, &err)) ...;
 *   int n = avs_logmel_count(S, AVS_LOGMEL_STREAM);          examples the wave holds
 *   float *ex = malloc(n * AVS_LOGMEL_EXAMPLE * sizeof(float));   [n,96,64]
 *   avs_logmel_examples(&m, ex, n, wave, S, AVS_LOGMEL_STREAM, &err);
 *   avs_logmel_free(&m);
 *
 * wave: mono 16 kHz samples in [-1,1] (s16 / 32768, as torchvggish's wavfile_to_examples).
 * Frames: 25 ms periodic Hann window (400), hop 10 ms (160), |rfft| over 512 points (257 bins),
 * times the 64-band HTK mel matrix over 125..7500 Hz (DC row zeroed), then log(mel + 0.01).
 * Frame f starts at sample 160 f; a wave of S >= 400 samples has 1 + (S-400)/160 frames.
 * ref: torchvggish mel_features.log_mel_spectrogram, spectrogram_to_mel_matrix and
 * vggish_input.waveform_to_examples (the TF VGGish front end, ported to numpy).
 *
 * Policies (how a wave is cut into [96 frames x 64 bands] examples):
 *   STREAM  the official one: examples of 96 frames at hop 96 over the whole wave (example k
 *           starts at sample 15360 k, 0.96 s); count = floor(frames / 96).
 *   SECOND  one example per whole second: example k is the first 96 frames of the log-mel of
 *           samples [16000 k, 16000 k + 16000) alone (what running the official front end on
 *           each 1-second WAV of the store gives); count = floor(S / 16000).
 * Asking for n examples when the wave holds fewer repeats the last one (AVSBench's padding);
 * asking for fewer keeps the first n. A wave too short for one example is an error.
 * Precision: framing, window and FFT in double (FFTW3's r2c of one frame, planned once: from
 * wisdom stored in logmel.c where it applies (FFTW 3.3.10 with AVX), else FFTW_ESTIMATE; never
 * timed at run time, so every run picks the same algorithm and gives the same bits), then |X|, the mel sums and the log in float: after the
 * FFT every step has a small RELATIVE error (<= ~1e-6 of log's argument), while the FFT's error
 * is ABSOLUTE, proportional to the frame's energy, and log(mel + 0.01) would turn a float FFT's
 * 1e-5 on a quiet band of a loud frame into 1e-3 (the reason the FFT stays double).
 * Speed: the mel matrix is kept as sparse rows (a band touches <= 20 bins). With AVX2 + FMA
 * (checked once at init) |X| is 8 bins at a time, the mel sums 8 bands at a time (dense
 * [bin][8] blocks of the rows, FMAs), the log libmvec's 8-wide logf (glibc); otherwise plain
 * loops (the paths may differ in the last bit; a given machine always takes the same one).
 * avs_logmel_examples spreads examples over OpenMP threads (omp_get_max_threads() at init,
 * at most AVS_LOGMEL_MAXT), each with its own FFT buffers and one shared plan executed through
 * FFTW's new-array interface (thread-safe), so results do not depend on the thread count.
 * Plans are made and destroyed under a lock (FFTW's planner is not thread-safe), so structs may
 * be set up from several threads; one struct serves one caller at a time.
 */
#ifndef AVS_FEATURES_LOGMEL_H
#define AVS_FEATURES_LOGMEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

struct fftw_plan_s; /* <fftw3.h>'s fftw_plan, kept out of this header */

#define AVS_LOGMEL_RATE 16000
#define AVS_LOGMEL_WIN 400
#define AVS_LOGMEL_HOP 160
#define AVS_LOGMEL_FFT 512
#define AVS_LOGMEL_BINS 257 /* AVS_LOGMEL_FFT / 2 + 1 */
#define AVS_LOGMEL_MELS 64
#define AVS_LOGMEL_FRAMES 96                                         /* frames per example */
#define AVS_LOGMEL_EXAMPLE (AVS_LOGMEL_FRAMES * AVS_LOGMEL_MELS)     /* floats per example */
#define AVS_LOGMEL_EXAMPLE_HOP (AVS_LOGMEL_FRAMES * AVS_LOGMEL_HOP) /* 15360 samples */

enum avs_logmel_policy { AVS_LOGMEL_STREAM, AVS_LOGMEL_SECOND };

#define AVS_LOGMEL_MAXT 64 /* threads with their own FFT scratch */

/* Buffers of one thread (fftw_malloc'd, so all share the plan's alignment). */
struct avs_logmel_buf {
    double *in;   /* [512] windowed frame, zero-padded (the pad is never written) */
    double *spec; /* [257,2] complex spectrum (re, im pairs) */
    float *mag;   /* [257] |X| (bins outside [klo, khi) stay 0) */
};

struct avs_logmel {
    struct fftw_plan_s *plan;  /* r2c of 512 points, run on each thread's buffers */
    int wisdom;                /* plan came from the stored wisdom (else FFTW_ESTIMATE) */
    struct avs_logmel_buf buf[AVS_LOGMEL_MAXT];
    int nthreads;  /* examples are computed by up to this many OpenMP threads */
    int avx2;      /* the CPU has AVX2 + FMA: the SIMD post-processing runs */
    double window[AVS_LOGMEL_WIN];                 /* periodic Hann */
    int lo[AVS_LOGMEL_MELS], hi[AVS_LOGMEL_MELS];  /* non-zero bins of a band: [lo, hi) */
    int off[AVS_LOGMEL_MELS];                      /* band b's weights: wt[off[b] .. + hi-lo) */
    int klo, khi;                                  /* bins any band uses: [klo, khi) */
    int khi8;                                      /* khi rounded up to klo + 8 j */
    float wt[2 * AVS_LOGMEL_BINS];                 /* sparse mel rows (each bin is in <= 2 bands) */
    int dlo[AVS_LOGMEL_MELS / 8], dhi[AVS_LOGMEL_MELS / 8], doff[AVS_LOGMEL_MELS / 8];
    float dw[8 * 2 * AVS_LOGMEL_BINS];             /* the rows as dense [bin][8] blocks of 8 bands */
};

int avs_logmel_init(struct avs_logmel *m, struct avs_err *err);
void avs_logmel_free(struct avs_logmel *m);

/* Log-mel frames of a wave of S samples: 1 + (S-400)/160, or 0 when S < 400. */
int64_t avs_logmel_num_frames(int64_t S);
/* out [F,64] for the first F frames of wave (needs F <= avs_logmel_num_frames(S)). */
void avs_logmel_frames(struct avs_logmel *m, float *out, int64_t F, const float *wave, int64_t S);

/* Whole examples a wave of S samples holds under the policy. */
int64_t avs_logmel_count(int64_t S, enum avs_logmel_policy policy);
/* out [n,96,64]: n examples (n >= 1), the last repeated when the wave holds fewer.
 * Fails (message names the sizes) when the wave holds no whole example. */
int avs_logmel_examples(struct avs_logmel *m, float *out, int64_t n, const float *wave, int64_t S,
                        enum avs_logmel_policy policy, struct avs_err *err);
const char *avs_logmel_policy_name(enum avs_logmel_policy p);
/* "stream" / "second" -> policy; -1 if unknown. */
int avs_logmel_policy_parse(const char *s);

/* The 512-point r2c plan of this front end (from the stored wisdom, else FFTW_ESTIMATE; made
 * and destroyed under the planner lock), for other front ends with a 512-point FFT
 * (features/panns_mel.h). in [512] and spec [257,2] fftw_malloc'd; NULL if FFTW fails. */
struct fftw_plan_s *avs_logmel_plan512(double *in, double *spec, int *from_wisdom);
void avs_logmel_plan512_free(struct fftw_plan_s *p);

#endif
