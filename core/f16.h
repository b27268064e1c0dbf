/* core/f16.h: IEEE 754 half (binary16) and bfloat16 <-> float, for the fp16 feature cache
 * (features/cache.c) and F16/BF16 safetensors (core/safetensors.c).
 *
 *   uint16_t h = avs_f32_to_f16(x);    round to nearest even; overflow -> inf, NaN stays NaN
 *   float x = avs_f16_to_f32(h);       exact (every half is a float)
 *   float y = avs_bf16_to_f32(b);      exact (the top 16 bits of a float)
 *
 * Inline: the cache converts every element of every record it reads.
 */
#ifndef AVS_CORE_F16_H
#define AVS_CORE_F16_H

#include <stdint.h>
#include <string.h>

static inline uint16_t avs_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, e = (x >> 23) & 0xff, m = x & 0x7fffff;
    if (e == 0xff) /* inf, nan */
        return (uint16_t)(sign | 0x7c00 | (m ? 0x200 : 0));
    int ex = (int)e - 127 + 15;
    if (ex >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (ex <= 0) { /* subnormal half (or zero) */
        if (ex < -10)
            return (uint16_t)sign;
        m |= 0x800000;
        int shift = 14 - ex;
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)ex << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++; /* may carry into the exponent: still correct, up to inf */
    return (uint16_t)(sign | h);
}

static inline float avs_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    if (e == 0) {
        if (!m)
            x = sign;
        else { /* subnormal: normalise */
            int k = -1;
            do {
                k++;
                m <<= 1;
            } while (!(m & 0x400));
            x = sign | ((uint32_t)(127 - 15 - k) << 23) | ((m & 0x3ff) << 13);
        }
    } else if (e == 31)
        x = sign | 0x7f800000 | (m << 13);
    else
        x = sign | ((e - 15 + 127) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static inline float avs_bf16_to_f32(uint16_t b)
{
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

#endif
