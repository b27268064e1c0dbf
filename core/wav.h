/* core/wav.h: mono 16-bit WAV files through libsndfile.
 *
 * The store's audio seconds are mono s16 16 kHz, exactly 16000 samples (DESIGN §2).
 */
#ifndef AVS_CORE_WAV_H
#define AVS_CORE_WAV_H

#include <stdint.h>

#include "core/common.h"

/* Write n mono s16 samples at `rate` Hz to `path` (in place; pass a temp name for safety). */
int avs_wav_write_s16(const char *path, int rate, const int16_t *samples, int64_t n,
                      struct avs_err *err);
/* Read a WAV (any channel count: averaged to mono) as float in [-1, 1]. *samples malloc'd. */
int avs_wav_read_float(const char *path, float **samples, int64_t *n, int *rate,
                       struct avs_err *err);
/* Read a mono s16 WAV exactly (refuses other formats, naming them). */
int avs_wav_read_s16(const char *path, int16_t **samples, int64_t *n, int *rate,
                     struct avs_err *err);

#endif
