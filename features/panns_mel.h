/* features/panns_mel.h: the log-mel front end of PANNs Cnn14_16k (model/panns.h), as C3N's
 * PANNs variant feeds it: each second of the 16 kHz wave alone (the official loader cuts the
 * clip into 1-second chunks of 16000 samples), 101 frames x 64 mel bins per second.
 *
 *   struct avs_panns_mel m;
 *   if (avs_panns_mel_init(&m, &err)) ...;
 *   float *lm = malloc(n * AVS_PANNS_MEL_EXAMPLE * sizeof(float));     [n,101,64]
 *   avs_panns_mel_seconds(&m, lm, wave, n);                         wave [n*16000]
 *   avs_panns_mel_free(&m);
 *
 * ref: torchlibrosa Spectrogram + LogmelFilterBank with Cnn14_16k's settings (audioset_tagging_cnn
 * pytorch/models.py): n_fft = win_length = 512, hop 160, periodic Hann window
 * (librosa.filters.get_window('hann', 512, fftbins=True)), center=True with reflect padding of
 * 256 samples at both ends of the chunk, power |X|^2, librosa.filters.mel(sr=16000, n_fft=512,
 * n_mels=64, fmin=50, fmax=8000) (Slaney mel scale, Slaney area normalisation), then
 * 10*log10(max(mel, 1e-10)) (ref 1.0, top_db None). Frame f of a chunk of S samples covers
 * padded samples [160 f, 160 f + 512); S samples give 1 + S/160 frames (101 for a second).
 * Precision: window, FFT (FFTW's 512-point r2c, the plan of features/logmel.h), power, mel
 * sums and the log in double, rounded to float at the end (the reference computes in float32:
 * its error on a quiet band of a loud frame is absolute, ours is far smaller). One thread:
 * 101 FFTs per second are microseconds next to CNN14.
 */
#ifndef AVS_FEATURES_PANNS_MEL_H
#define AVS_FEATURES_PANNS_MEL_H

#include <stdint.h>

#include "core/common.h"

struct fftw_plan_s;

#define AVS_PANNS_MEL_RATE 16000
#define AVS_PANNS_MEL_FFT 512
#define AVS_PANNS_MEL_BINS 257
#define AVS_PANNS_MEL_HOP 160
#define AVS_PANNS_MEL_BANDS 64
#define AVS_PANNS_MEL_FRAMES 101 /* of one second: 1 + 16000 / 160 */
#define AVS_PANNS_MEL_EXAMPLE (AVS_PANNS_MEL_FRAMES * AVS_PANNS_MEL_BANDS)

struct avs_panns_mel {
    struct fftw_plan_s *plan;
    double *in, *spec;                        /* [512], [257,2] fftw_malloc'd */
    double window[AVS_PANNS_MEL_FFT];         /* periodic Hann */
    double fb[AVS_PANNS_MEL_BANDS][AVS_PANNS_MEL_BINS]; /* mel filters (Slaney) */
    int lo[AVS_PANNS_MEL_BANDS], hi[AVS_PANNS_MEL_BANDS]; /* non-zero bins of a band: [lo, hi) */
};

int avs_panns_mel_init(struct avs_panns_mel *m, struct avs_err *err);
void avs_panns_mel_free(struct avs_panns_mel *m);
/* Frames of a chunk of S samples (S > 256, for the reflect padding): 1 + S / 160. */
int64_t avs_panns_mel_num_frames(int64_t S);
/* out [1 + S/160, 64]: the log-mel of wave [S] (S > 256) on its own. */
void avs_panns_mel_chunk(struct avs_panns_mel *m, float *out, const float *wave, int64_t S);
/* out [n,101,64]: second k is the log-mel of wave[16000 k, 16000 k + 16000) alone. */
void avs_panns_mel_seconds(struct avs_panns_mel *m, float *out, const float *wave, int n);
/* librosa.filters.mel's Slaney filter bank for sr, n_fft, bands, fmin, fmax into fb
 * [bands, n_fft/2+1] (double; the reference rounds it to float32). */
void avs_panns_mel_filters(double *fb, int sr, int n_fft, int bands, double f_lo, double f_hi);

#endif
