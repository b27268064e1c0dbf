/* bench/fuzz/fuzz_safetensors.c: the safetensors reader (core/safetensors.c: header length,
 * JSON header, dtypes, shapes, data offsets) and what avs-train/avs-predict read from a
 * checkpoint's metadata through it (train/ckpt.c: the recorded config and training state). */
#include "bench/fuzz/fuzz.h"
#include "core/safetensors.h"
#include "train/ckpt.h"

static int is_float(enum avs_st_dtype d)
{
    return d == AVS_ST_F32 || d == AVS_ST_F16 || d == AVS_ST_BF16 || d == AVS_ST_F64;
}

int avs_fuzz_safetensors(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_safetensors(const uint8_t *data, size_t size, struct avs_err *err)
{
    const char *path = avs_fuzz_file("in.safetensors", data, size);
    struct avs_st_file *f;
    if (avs_st_open(path, &f, err))
        return -1;
    int rc = 0;
    for (int i = 0; i < f->n && rc == 0; i++) {
        const struct avs_st_tensor *t = &f->t[i];
        if (!is_float(t->dtype))
            continue;
        float *x = avs_malloc(t->numel ? 4 * t->numel : 1);
        rc = avs_st_read_f32(t, x, t->numel, err);
        free(x);
        AVS_ASSERT(avs_st_find(f, t->name) != NULL);
    }
    (void)avs_st_meta(f, "format");
    avs_st_close(&f);
    if (rc)
        return rc;
    struct avs_train_state st;
    char *config = NULL;
    if (avs_ckpt_config(path, &config, err) || avs_ckpt_state(path, &st, err))
        rc = -1;
    free(config);
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_safetensors)
