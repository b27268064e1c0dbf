/* bench/fuzz/fuzz_pth.c: PyTorch checkpoints through avs_st_open (core/pth.c: the zip archive
 * through libzip, core/pickle.c: the restricted unpickler, the state-dict unwrapping, strided
 * views gathered out of their storages), then every tensor's bytes read back as a consumer
 * would (avs_st_read_f32 for the float ones).
 *
 * An input that starts with "PK" is the whole file. Any other input is a data.pkl: it is put
 * into a zip beside four 64-byte storages data/0..data/3 (what the seeds' tensors reference),
 * so mutations reach the unpickler and the tensor code instead of failing the archive's CRC. */
#include <zip.h>

#include "bench/fuzz/fuzz.h"
#include "core/safetensors.h"

static int pth_is_float(enum avs_st_dtype d)
{
    return d == AVS_ST_F32 || d == AVS_ST_F16 || d == AVS_ST_BF16 || d == AVS_ST_F64;
}

/* <scratch>/in.pth: archive/data.pkl = data, archive/data/K = 64 bytes for K = 0..3 */
static const char *pth_wrap(const uint8_t *data, size_t size)
{
    static unsigned char storage[64];
    static char path[600];
    for (size_t i = 0; i < sizeof storage; i++)
        storage[i] = (unsigned char)(i * 29 + 3);
    snprintf(path, sizeof path, "%s/in.pth", avs_fuzz_tmpdir());
    int ze = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    AVS_ASSERT(za != NULL);
    zip_source_t *s = zip_source_buffer(za, data, size, 0);
    AVS_ASSERT(s && zip_file_add(za, "archive/data.pkl", s, ZIP_FL_OVERWRITE) >= 0);
    for (int k = 0; k < 4; k++) {
        char name[32];
        snprintf(name, sizeof name, "archive/data/%d", k);
        s = zip_source_buffer(za, storage, sizeof storage, 0);
        AVS_ASSERT(s && zip_file_add(za, name, s, ZIP_FL_OVERWRITE) >= 0);
    }
    AVS_ASSERT(zip_close(za) == 0);
    return path;
}

int avs_fuzz_pth(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_pth(const uint8_t *data, size_t size, struct avs_err *err)
{
    const char *path = size >= 2 && data[0] == 'P' && data[1] == 'K'
                           ? avs_fuzz_file("in.pth", data, size) : pth_wrap(data, size);
    struct avs_st_file *f;
    if (avs_st_open(path, &f, err))
        return -1;
    int rc = 0;
    volatile unsigned sum = 0;
    for (int i = 0; i < f->n && rc == 0; i++) {
        const struct avs_st_tensor *t = &f->t[i];
        AVS_ASSERT(t->nbytes == t->numel * avs_st_dtype_size(t->dtype));
        for (size_t b = 0; b < t->nbytes; b++) /* every byte must be readable */
            sum += ((const unsigned char *)t->data)[b];
        if (!pth_is_float(t->dtype))
            continue;
        float *x = avs_malloc(t->numel ? 4 * t->numel : 1);
        rc = avs_st_read_f32(t, x, t->numel, err);
        free(x);
        AVS_ASSERT(avs_st_find(f, t->name) != NULL);
    }
    avs_st_close(&f);
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_pth)
