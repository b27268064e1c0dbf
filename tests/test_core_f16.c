/* tests/test_core_f16.c: core/f16.h against a double-precision reference:
 *   - every one of the 65536 halves decodes to (-1)^s * m * 2^(e-25) (subnormals m * 2^-24),
 *     inf and NaN as such, and encodes back to itself (NaN stays NaN);
 *   - floats round to the nearest half, ties to the even one, past 65504 + 16 to inf: checked
 *     at every midpoint between neighbouring halves, one float either side of it, and on
 *     random floats of every magnitude;
 *   - bfloat16 is the top half of a float.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/f16.h"
#include "tests/check.h"

/* The value of half h in double (NaN for NaN). */
static double ref_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 31 ? (m ? NAN : INFINITY) : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void check_decode(void)
{
    int bad = 0, back = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        double want = ref_value((uint16_t)h);
        float got = avs_f16_to_f32((uint16_t)h);
        int nan = isnan(want);
        if (nan ? !isnan(got) : (double)got != want || !signbit(got) != !signbit(want))
            bad++;
        uint16_t again = avs_f32_to_f16(got);
        if (nan ? (again & 0x7c00) != 0x7c00 || !(again & 0x3ff) : again != h)
            back++;
    }
    CHECK(bad == 0, "%d halves decode wrongly", bad);
    CHECK(back == 0, "%d halves do not encode back to themselves", back);
}

/* The nearest half to x by the table of positive halves (ties: the even code), inf past
 * the midpoint 65520 between 65504 and 65536. */
static uint16_t ref_round(float x)
{
    double a = fabs((double)x);
    uint16_t s = signbit(x) ? 0x8000 : 0;
    if (isnan(x))
        return 0x7e00;
    if (a >= 65520.0)
        return s | 0x7c00;
    uint16_t lo = 0, hi = 0x7bff; /* largest code with value <= a */
    while (lo < hi) {
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if (ref_value(mid) <= a)
            lo = mid;
        else
            hi = (uint16_t)(mid - 1);
    }
    double below = ref_value(lo), above = lo == 0x7bff ? 65536.0 : ref_value((uint16_t)(lo + 1));
    uint16_t up = (uint16_t)(lo + 1);
    if (a - below < above - a || (a - below == above - a && !(lo & 1)))
        return s | lo;
    return s | up;
}

static void check_encode(void)
{
    int bad = 0;
    float worst = 0;
    for (uint16_t h = 0; h < 0x7c00; h++) { /* every midpoint and its two float neighbours */
        double lo = ref_value(h), hi = h == 0x7bff ? 65536.0 : ref_value((uint16_t)(h + 1));
        float mid = (float)((lo + hi) / 2); /* exact: halves have 11 significant bits */
        float x[3] = {nextafterf(mid, 0.0f), mid, nextafterf(mid, INFINITY)};
        for (int i = 0; i < 3; i++)
            for (int s = 0; s < 2; s++) {
                float v = s ? -x[i] : x[i];
                if (avs_f32_to_f16(v) != ref_round(v)) {
                    bad++;
                    worst = v;
                }
            }
    }
    CHECK(bad == 0, "%d midpoint cases round wrongly (e.g. %.9g)", bad, worst);
    uint64_t st = 99;
    bad = 0;
    for (int i = 0; i < 200000; i++) { /* random bit patterns: every magnitude, inf, NaN */
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t bits = (uint32_t)(st >> 32);
        float v;
        memcpy(&v, &bits, 4);
        uint16_t got = avs_f32_to_f16(v), want = ref_round(v);
        if (isnan(v) ? (got & 0x7c00) != 0x7c00 || !(got & 0x3ff) : got != want)
            bad++;
    }
    CHECK(bad == 0, "%d random floats round wrongly", bad);
    CHECK(avs_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00, "tie rounds to even (down)");
    CHECK(avs_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02, "tie rounds to even (up)");
    CHECK(avs_f32_to_f16(1e6f) == 0x7c00 && avs_f32_to_f16(-1e6f) == 0xfc00, "overflow to inf");
    CHECK(avs_f32_to_f16(1e-9f) == 0 && avs_f32_to_f16(-1e-9f) == 0x8000, "underflow to zero");
}

static void check_bf16(void)
{
    CHECK(avs_bf16_to_f32(0x3f80) == 1.0f && avs_bf16_to_f32(0xc040) == -3.0f, "bf16 1, -3");
    CHECK(isinf(avs_bf16_to_f32(0x7f80)) && isnan(avs_bf16_to_f32(0x7fc0)), "bf16 inf, nan");
}

int main(void)
{
    check_decode();
    check_encode();
    check_bf16();
    return check_summary("test_core_f16");
}
