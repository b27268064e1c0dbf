/* bench/fuzz/fuzz_cache.c: the feature cache reader (features/cache.c: header, field table,
 * record layout) and every field of the first records, as avs-train reads them.
 *
 * Checksums (format version 2, features/cache.h): a mutation almost never keeps the header's
 * XXH3 right, so fed as is nearly every input would stop at "header checksum mismatch". The
 * target first rewrites, in a copy, the header checksum and the checksums of the records it
 * reads (as the header's record_bytes and data_offset place them), so mutations reach the
 * field table checks, the layout and the NaN/Inf scans. An input with bit 0 of the header's
 * reserved word (byte 20) set is fed unmodified: the checksum refusals stay exercised (seeds
 * "raw", "raw_badsum"). Byte 0 cannot choose: it is the magic's 'A'. */
#include "bench/fuzz/fuzz.h"
#include "core/integrity.h"
#include "features/cache.h"

#define FZC_RECORDS 4 /* records read (and their checksums rewritten) */

static uint64_t fzc_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void fzc_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The header checksum of d (64 + n_fields * 64 bytes, when there), then those of the first
 * records; anything the reader would refuse before a checksum is left alone. */
static void fzc_fix_sums(uint8_t *d, size_t size)
{
    if (size < 64 || memcmp(d, "AVSFEAT", 8))
        return;
    uint32_t n = (uint32_t)d[16] | (uint32_t)d[17] << 8 | (uint32_t)d[18] << 16 |
                 (uint32_t)d[19] << 24;
    if (n < 1 || n > AVS_CACHE_MAXFIELDS || size < 64 + (size_t)n * 64)
        return;
    size_t hb = 64 + (size_t)n * 64;
    fzc_put64(d + 40, 0);
    fzc_put64(d + 40, avs_xxh3(d, hb, 0));
    uint64_t rb = fzc_get64(d + 24), at = fzc_get64(d + 32);
    if (rb < 8 || at < hb || at > size)
        return;
    for (uint64_t r = 0; r < FZC_RECORDS && rb <= (size - at) / (r + 1); r++) {
        uint64_t off = at + r * rb;
        fzc_put64(d + off + rb - 8, avs_xxh3(d + off, (size_t)(rb - 8), off));
    }
}

int avs_fuzz_cache(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_cache(const uint8_t *data, size_t size, struct avs_err *err)
{
    uint8_t *copy = avs_malloc(size);
    if (size)
        memcpy(copy, data, size);
    if (size < 21 || !(data[20] & 1))
        fzc_fix_sums(copy, size);
    const char *path = avs_fuzz_file("in.bin", copy, size);
    free(copy);
    struct avs_cache *c;
    if (avs_cache_open(&c, path, err))
        return -1;
    int rc = 0;
    for (int64_t r = 0; r < c->n_records && r < FZC_RECORDS && rc == 0; r++)
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
