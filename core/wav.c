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

int avs_wav_read_float(const char *path, float **samples, int64_t *n, int *rate,
                       struct avs_err *err)
{
    SF_INFO info;
    SNDFILE *sf = open_read(path, &info, err);
    if (!sf)
        return -1;
    size_t count;
    if (avs_size_mul((size_t)info.frames, (size_t)info.channels, &count)) {
        sf_close(sf);
        return avs_err_set(err, "audio %s too large", path);
    }
    float *inter = avs_malloc(count * sizeof(float));
    sf_count_t got = sf_readf_float(sf, inter, info.frames);
    sf_close(sf);
    float *mono = avs_malloc((size_t)(got > 0 ? got : 1) * sizeof(float));
    for (sf_count_t i = 0; i < got; i++) {
        double s = 0;
        for (int ch = 0; ch < info.channels; ch++)
            s += inter[i * info.channels + ch];
        mono[i] = (float)(s / info.channels);
    }
    free(inter);
    *samples = mono;
    *n = got;
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
    int16_t *buf = avs_malloc((size_t)(info.frames ? info.frames : 1) * sizeof(int16_t));
    sf_count_t got = sf_read_short(sf, buf, info.frames);
    sf_close(sf);
    *samples = buf;
    *n = got;
    *rate = info.samplerate;
    return 0;
}
