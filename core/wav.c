/* core/wav.c: WAV through libsndfile. */
#include <errno.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/wav.h"

int avs_wav_write_s16(const char *path, int rate, const int16_t *samples, int64_t n,
                      struct avs_err *err)
{
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.samplerate = rate;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    errno = 0;
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    if (!sf)
        return errno ? avs_fs_write_error(err, path, errno)
                     : avs_err_set(err, "cannot write WAV %s: %s", path, sf_strerror(NULL));
    /* libsndfile writes with write(2) and keeps errno: a full disk reads as one here */
    errno = 0;
    sf_count_t put = sf_write_short(sf, samples, (sf_count_t)n);
    int rc = 0, e = errno;
    if (put != (sf_count_t)n)
        rc = e ? avs_fs_write_error(err, path, e)
               : avs_err_set(err, "cannot write WAV %s: %s", path, sf_strerror(sf));
    errno = 0;
    if (sf_close(sf) != 0 && rc == 0)
        rc = errno ? avs_fs_write_error(err, path, errno)
                   : avs_err_set(err, "cannot finish WAV %s: %s", path, sf_strerror(NULL));
    return rc;
}

static SNDFILE *open_read(const char *path, SF_INFO *info, struct avs_err *err)
{
    memset(info, 0, sizeof *info);
    SNDFILE *sf = sf_open(path, SFM_READ, info);
    if (!sf)
        avs_err_set(err, "cannot read audio %s: %s", path, sf_strerror(NULL));
    else if (info->frames < 0 || info->channels <= 0 || info->frames > ((int64_t)1 << 40)) {
        avs_err_set(err, "audio %s: implausible header (%lld frames, %d channels)", path,
                    (long long)info->frames, info->channels);
        sf_close(sf);
        sf = NULL;
    }
    return sf;
}

/* Samples are counted as they decode, never sized from the header: a damaged one (a 46-byte
 * FLAC whose STREAMINFO promises 2^36 samples of 8 channels) must not allocate terabytes. */
#define BLOCK 4096 /* frames per read */

static void grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return;
    *cap = need > 2 * *cap ? need : 2 * *cap;
    *buf = avs_realloc(*buf, *cap * elem);
}

int avs_wav_read_float(const char *path, float **samples, int64_t *n, int *rate,
                       struct avs_err *err)
{
    SF_INFO info;
    SNDFILE *sf = open_read(path, &info, err);
    if (!sf)
        return -1;
    float *block = avs_malloc((size_t)BLOCK * (size_t)info.channels * sizeof(float));
    void *mono = NULL;
    size_t got = 0, cap = 0;
    sf_count_t k;
    while ((k = sf_readf_float(sf, block, BLOCK)) > 0) {
        grow(&mono, &cap, got + (size_t)k, sizeof(float));
        for (sf_count_t i = 0; i < k; i++) {
            double s = 0;
            for (int ch = 0; ch < info.channels; ch++)
                s += block[i * info.channels + ch];
            ((float *)mono)[got + (size_t)i] = (float)(s / info.channels);
        }
        got += (size_t)k;
    }
    sf_close(sf);
    free(block);
    *samples = mono ? mono : avs_malloc(sizeof(float));
    *n = (int64_t)got;
    *rate = info.samplerate;
    return 0;
}

int avs_wav_read_s16(const char *path, int16_t **samples, int64_t *n, int *rate,
                     struct avs_err *err)
{
    SF_INFO info;
    SNDFILE *sf = open_read(path, &info, err);
    if (!sf)
        return -1;
    if (info.channels != 1 || (info.format & SF_FORMAT_SUBMASK) != SF_FORMAT_PCM_16) {
        sf_close(sf);
        return avs_err_set(err, "audio %s: expected mono 16-bit PCM, found %d channels, format 0x%x",
                           path, info.channels, info.format);
    }
    void *buf = NULL;
    size_t got = 0, cap = 0;
    sf_count_t k;
    do {
        grow(&buf, &cap, got + BLOCK, sizeof(int16_t));
        got += (size_t)((k = sf_read_short(sf, (int16_t *)buf + got, BLOCK)) > 0 ? k : 0);
    } while (k > 0);
    sf_close(sf);
    *samples = buf;
    *n = (int64_t)got;
    *rate = info.samplerate;
    return 0;
}
