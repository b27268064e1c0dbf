/* audiohead/tfrecord.c: the TFRecord framing with its masked CRC32C checks (audiohead.h). */
#include <isa-l/crc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audiohead/audiohead.h"
#include "core/fs.h"

/* CRC32C (Castagnoli, as iSCSI): Intel ISA-L's crc32_iscsi, which neither starts from nor
 * ends with the inversion the usual definition has; the chaining form here keeps that one. */
uint32_t avs_ah_crc32c(uint32_t crc, const void *data, size_t n)
{
    uint32_t c = ~crc;
    const unsigned char *p = data;
    while (n > 0) { /* ISA-L takes an int length */
        int step = n > (1u << 30) ? 1 << 30 : (int)n;
        c = crc32_iscsi((unsigned char *)p, step, c);
        p += step, n -= (size_t)step;
    }
    return ~c;
}

uint32_t avs_ah_crc_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int avs_ah_tfr_open(struct avs_ah_tfr *r, const char *path, struct avs_err *err)
{
    memset(r, 0, sizeof *r);
    if (avs_fs_read_all(path, &r->data, &r->len, err))
        return avs_err_wrap(err, "reading the TFRecord file %s", path);
    r->path = avs_strdup(path);
    return 0;
}

int avs_ah_tfr_next(struct avs_ah_tfr *r, const uint8_t **rec, size_t *len, struct avs_err *err)
{
    if (r->pos == r->len)
        return 0;
    const uint8_t *p = (const uint8_t *)r->data + r->pos;
    size_t left = r->len - r->pos;
    const char *fix = "the file is truncated or not a TFRecord file: download it again";
    if (left < 12)
        return avs_err_set(err, "%s: record %lld at byte %zu: %zu bytes left, a record header "
                           "needs 12 (%s)", r->path, (long long)r->index, r->pos, left, fix);
    uint64_t n = le64(p);
    if (avs_ah_crc_mask(avs_ah_crc32c(0, p, 8)) != le32(p + 8))
        return avs_err_set(err, "%s: record %lld at byte %zu: the length's CRC32C does not "
                           "match (%s)", r->path, (long long)r->index, r->pos, fix);
    if (n > left - 12 || left - 12 - n < 4)
        return avs_err_set(err, "%s: record %lld at byte %zu: length %llu runs past the end of "
                           "the file (%zu bytes left) (%s)", r->path, (long long)r->index, r->pos,
                           (unsigned long long)n, left - 12, fix);
    if (avs_ah_crc_mask(avs_ah_crc32c(0, p + 12, n)) != le32(p + 12 + n))
        return avs_err_set(err, "%s: record %lld at byte %zu: the data's CRC32C does not match "
                           "(the file is damaged: download it again)", r->path,
                           (long long)r->index, r->pos);
    *rec = p + 12;
    *len = (size_t)n;
    r->pos += 16 + (size_t)n;
    r->index++;
    return 1;
}

void avs_ah_tfr_close(struct avs_ah_tfr *r)
{
    free(r->data);
    free(r->path);
    memset(r, 0, sizeof *r);
}
