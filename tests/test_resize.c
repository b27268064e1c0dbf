/* tests/test_resize.c: core/resize.c against cv2.resize(INTER_LINEAR) (fixture from
 * tests/gen/ingest_resize.py). Expected: identical bytes; allowed: |diff| <= 1 on at most 0.5%
 * of values (OpenCV's scalar tail may round differently from its SIMD body). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/image.h"
#include "tests/check.h"

static uint32_t rd32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

int main(void)
{
    struct avs_err err = {0};
    char *data;
    size_t len;
    if (avs_fs_read_all("tests/fixtures/ingest/resize.bin", &data, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const unsigned char *p = (const unsigned char *)data;
    CHECK(len > 12 && !memcmp(p, "AVSRSZ1", 8), "fixture magic");
    uint32_t n = rd32(p + 8);
    size_t off = 12;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t sw = rd32(p + off), sh = rd32(p + off + 4), c = rd32(p + off + 8);
        uint32_t dw = rd32(p + off + 12), dh = rd32(p + off + 16);
        off += 20;
        struct avs_image src = {0}, dst = {0};
        avs_image_alloc(&src, (int)sw, (int)sh, (int)c);
        avs_image_alloc(&dst, (int)dw, (int)dh, (int)c);
        memcpy(src.data, p + off, (size_t)sw * sh * c);
        off += (size_t)sw * sh * c;
        avs_image_resize_bilinear(&src, &dst);
        size_t m = (size_t)dw * dh * c, off1 = 0, worst_i = 0;
        int worst = 0;
        for (size_t k = 0; k < m; k++) {
            int d = abs((int)dst.data[k] - (int)p[off + k]);
            off1 += d != 0;
            if (d > worst)
                worst = d, worst_i = k;
        }
        printf("case %u: %ux%ux%u -> %ux%u: %zu of %zu values differ, worst %d at %zu\n", i, sw, sh,
               c, dw, dh, off1, m, worst, worst_i);
        CHECK(worst <= 1, "case %u: worst |diff| %d at value %zu", i, worst, worst_i);
        CHECK(off1 * 200 <= m, "case %u: %zu of %zu values differ by 1", i, off1, m);
        off += m;
        avs_image_free(&src), avs_image_free(&dst);
    }
    CHECK(off == len, "fixture fully read");
    free(data);
    return check_summary("test_resize");
}
