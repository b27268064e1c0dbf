/* bench/fuzz/fuzz_wav.c: WAV files through libsndfile (core/wav.c: any WAV to mono float, the
 * store's exact s16 reader) and training's reader of a clip's seconds (store/frame.c). */
#include "bench/fuzz/fuzz.h"
#include "core/wav.h"
#include "store/store.h"

int avs_fuzz_wav(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_wav(const uint8_t *data, size_t size, struct avs_err *err)
{
    const char *path = avs_fuzz_file("in.wav", data, size);
    float *x = NULL;
    int16_t *s = NULL;
    int64_t n = 0;
    int rate = 0;
    int rc = avs_wav_read_float(path, &x, &n, &rate, err);
    free(x);
    if (rc == 0)
        AVS_ASSERT(n >= 0 && rate > 0);
    if (rc == 0 && (rc = avs_wav_read_s16(path, &s, &n, &rate, err)) == 0) {
        free(s);
        float *wave = avs_malloc(2 * AVS_STORE_RATE * sizeof *wave);
        char *rel[2] = {"in.wav", NULL};
        rc = avs_store_wave(wave, avs_fuzz_tmpdir(), rel, 2, err);
        free(wave);
    }
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_wav)
