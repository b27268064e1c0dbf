/* bench/fuzz/fuzz_cache.c: the feature cache reader (features/cache.c: header, field table,
 * record layout) and every field of the first records, as avs-train reads them. */
#include "bench/fuzz/fuzz.h"
#include "features/cache.h"

int avs_fuzz_cache(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_cache(const uint8_t *data, size_t size, struct avs_err *err)
{
    const char *path = avs_fuzz_file("in.bin", data, size);
    struct avs_cache *c;
    if (avs_cache_open(&c, path, err))
        return -1;
    int rc = 0;
    for (int64_t r = 0; r < c->n_records && r < 4 && rc == 0; r++)
        for (int f = 0; f < c->n_fields && rc == 0; f++) {
            float *x = avs_malloc(4 * avs_cache_field_numel(&c->field[f]));
            rc = avs_cache_read(c, (int64_t)c->data_offset + r * (int64_t)c->record_bytes, f, x, err);
            free(x);
            AVS_ASSERT(avs_cache_find(c, c->field[f].name) >= 0);
        }
    /* An offset that is no record must be refused, not read. */
    float one[1];
    if (rc == 0 && avs_cache_read(c, (int64_t)c->len, 0, one, err) == 0)
        AVS_ASSERT(!"a record past the end was read");
    avs_cache_close(&c);
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_cache)
