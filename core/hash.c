/* core/hash.c: murmur3-128 through libavutil (core/hash.h). */
#include <libavutil/mem.h>
#include <libavutil/murmur3.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/hash.h"

void avs_hash_init(struct avs_hash *h)
{
    struct AVMurMur3 *m = av_murmur3_alloc();
    AVS_ASSERT(m);
    av_murmur3_init(m);
    h->state = m;
}

void avs_hash_update(struct avs_hash *h, const void *data, size_t n)
{
    av_murmur3_update(h->state, data, n);
}

void avs_hash_final(struct avs_hash *h, char hex[33])
{
    uint8_t d[16];
    av_murmur3_final(h->state, d);
    av_freep(&h->state);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

int avs_hash_file(const char *path, char hex[33], struct avs_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return avs_err_set(err, "cannot read %s to hash it (check the path)", path);
    struct avs_hash h;
    avs_hash_init(&h);
    size_t cap = 1 << 20, got;
    uint8_t *buf = avs_malloc(cap);
    while ((got = fread(buf, 1, cap, f)) > 0)
        avs_hash_update(&h, buf, got);
    int bad = ferror(f);
    fclose(f);
    free(buf);
    char tmp[33];
    avs_hash_final(&h, tmp);
    if (bad)
        return avs_err_set(err, "error reading %s to hash it", path);
    snprintf(hex, 33, "%s", tmp);
    return 0;
}
