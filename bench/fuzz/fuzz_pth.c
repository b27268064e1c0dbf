/* bench/fuzz/fuzz_pth.c: PyTorch checkpoints through avs_st_open (core/pth.c: the zip archive
 * through libzip, core/pickle.c: the restricted unpickler, the state-dict unwrapping, strided
 * views gathered out of their storages), then every tensor's bytes read back as a consumer
 * would (avs_st_read_f32 for the float ones). */
#include "bench/fuzz/fuzz.h"
#include "core/safetensors.h"

static int pth_is_float(enum avs_st_dtype d)
{
    return d == AVS_ST_F32 || d == AVS_ST_F16 || d == AVS_ST_BF16 || d == AVS_ST_F64;
}

int avs_fuzz_pth(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_pth(const uint8_t *data, size_t size, struct avs_err *err)
{
    const char *path = avs_fuzz_file("in.pth", data, size);
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
    (void)sum;
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_pth)
