/* core/integrity.c: checksums and NaN/Inf scans (integrity.h). */
#include "core/integrity.h"

#include <string.h>
#include <xxhash.h>

uint64_t avs_xxh3(const void *p, size_t n, uint64_t seed)
{
    return (uint64_t)XXH3_64bits_withSeed(p, n, (XXH64_hash_t)seed);
}

/* Values are scanned in blocks with a branch-free test (vectorises); the first bad block is
 * then searched element by element. */
#define BLOCK 1024

static int64_t scan16(const uint8_t *p, size_t n, uint16_t exp)
{
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t e = n - b < BLOCK ? n - b : BLOCK;
        int bad = 0;
        for (size_t i = b; i < b + e; i++) {
            uint16_t u = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            bad |= (u & exp) == exp;
        }
        if (bad)
            for (size_t i = b; i < b + e; i++)
                if ((((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)) & exp) == exp)
                    return (int64_t)i;
    }
    return -1;
}

static int64_t scan32(const uint8_t *p, size_t n)
{
    const uint32_t exp = 0x7f800000u;
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t e = n - b < BLOCK ? n - b : BLOCK;
        int bad = 0;
        for (size_t i = b; i < b + e; i++) {
            uint32_t u;
            memcpy(&u, p + 4 * i, 4);
            bad |= (u & exp) == exp;
        }
        if (bad)
            for (size_t i = b; i < b + e; i++) {
                uint32_t u;
                memcpy(&u, p + 4 * i, 4);
                if ((u & exp) == exp)
                    return (int64_t)i;
            }
    }
    return -1;
}

static int64_t scan64(const uint8_t *p, size_t n)
{
    const uint64_t exp = 0x7ff0000000000000ull;
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, p + 8 * i, 8);
        if ((u & exp) == exp)
            return (int64_t)i;
    }
    return -1;
}

int64_t avs_nonfinite(const void *p, size_t n, enum avs_float_kind k)
{
    switch (k) {
    case AVS_FLOAT_F32: return scan32(p, n);
    case AVS_FLOAT_F16: return scan16(p, n, 0x7c00);
    case AVS_FLOAT_BF16: return scan16(p, n, 0x7f80);
    case AVS_FLOAT_F64: return scan64(p, n);
    }
    return -1;
}

int64_t avs_nonfinite_f32(const float *x, size_t n)
{
    return scan32((const uint8_t *)x, n);
}
