/* core/integrity.c: checksums and NaN/Inf scans (integrity.h). */
#include "core/integrity.h"

#include <string.h>
#include <xxhash.h>

uint64_t avs_xxh3(const void *p, size_t n, uint64_t seed)
{
    return (uint64_t)XXH3_64bits_withSeed(p, n, (XXH64_hash_t)seed);
}

/* Values are scanned in blocks with a branch-free test that vectorises with plain SSE2: with
 * e = the exponent bits of a value (u & EXP), e + LOW (LOW = the exponent's lowest bit) reaches
 * the sign bit exactly when e is all ones (NaN/Inf); OR-ing over the block keeps that bit. The
 * first bad block is then searched element by element. */
#define BLOCK 1024

static uint16_t at16(const uint8_t *p, size_t i)
{
    uint16_t u;
    memcpy(&u, p + 2 * i, 2); /* little-endian hosts only, as every file reader here */
    return u;
}

static uint32_t at32(const uint8_t *p, size_t i)
{
    uint32_t u;
    memcpy(&u, p + 4 * i, 4);
    return u;
}

/* OR of (value & exp) + low over one block of BLOCK values (a constant trip count, which
 * GCC's -O2 vectoriser needs). */
static uint16_t block16(const uint8_t *p, uint16_t exp, uint16_t low)
{
    uint16_t acc = 0;
    for (size_t i = 0; i < BLOCK; i++)
        acc |= (uint16_t)((at16(p, i) & exp) + low);
    return acc;
}

static uint32_t block32(const uint8_t *p)
{
    uint32_t acc = 0;
    for (size_t i = 0; i < BLOCK; i++)
        acc |= (at32(p, i) & 0x7f800000u) + 0x00800000u;
    return acc;
}

static int64_t scan16(const uint8_t *p, size_t n, uint16_t exp)
{
    const uint16_t low = (uint16_t)(exp & -exp);
    size_t b = 0;
    while (b + BLOCK <= n && !(block16(p + 2 * b, exp, low) & 0x8000))
        b += BLOCK;
    for (size_t i = b; i < n; i++) /* the bad block, or the tail */
        if ((at16(p, i) & exp) == exp)
            return (int64_t)i;
    return -1;
}

static int64_t scan32(const uint8_t *p, size_t n)
{
    size_t b = 0;
    while (b + BLOCK <= n && !(block32(p + 4 * b) & 0x80000000u))
        b += BLOCK;
    for (size_t i = b; i < n; i++)
        if ((at32(p, i) & 0x7f800000u) == 0x7f800000u)
            return (int64_t)i;
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
