/* tests/test_tensor.c: core/tensor: arenas (alignment, capacity, rewind, lazy) and tensor
 * sets carved from a size table. */
#include <stdint.h>
#include <string.h>

#include "backend/backend.h"
#include "core/tensor.h"
#include "tests/check.h"

int main(void)
{
    struct avs_arena a;
    avs_arena_init(&a, 100);
    CHECK(a.cap == 112, "capacity rounded to 16 floats: %zu", a.cap);
    float *p = avs_arena_take(&a, 3), *q = avs_arena_take(&a, 20);
    CHECK(((uintptr_t)p & 63) == 0 && ((uintptr_t)q & 63) == 0, "64-byte aligned");
    CHECK(q - p == 16, "carved in order, rounded: %td", q - p);
    CHECK(p[0] == 0 && q[19] == 0, "zeroed");
    size_t mark = avs_arena_mark(&a);
    avs_arena_take(&a, 50);
    CHECK(a.used == 112 && a.peak == 112, "used %zu peak %zu", a.used, a.peak);
    avs_arena_rewind(&a, mark);
    CHECK(a.used == 48 && a.peak == 112, "rewound to %zu, peak kept", a.used);
    avs_arena_free(&a);
    CHECK(a.base == NULL && a.cap == 0, "freed");
    avs_arena_init_lazy(&a, (size_t)1 << 28); /* 1 GB of address space, untouched */
    float *big = avs_arena_take(&a, 10);
    big[9] = 1.5f;
    CHECK(big[9] == 1.5f, "lazy arena usable");
    avs_arena_free(&a);

    static const struct avs_tensor_spec spec[] = {
        {"conv.weight", 4, {8, 3, 3, 3}}, {"conv.bias", 1, {8}}, {"tpavi.g.weight", 5, {4, 8, 1, 1, 1}}};
    struct avs_tensor_set s;
    avs_tensor_set_init(&s, spec, 3);
    CHECK(s.n == 3 && avs_tensor_numel(&s.t[0]) == 216 && avs_tensor_numel(&s.t[2]) == 32, "numel");
    CHECK(s.t[1].data - s.t[0].data == 224, "table order, 16-float rounding");
    CHECK(avs_tensor_set_find(&s, "conv.bias") == 1 && avs_tensor_set_find(&s, "nope") == -1, "find");
    char buf[64];
    CHECK(!strcmp(avs_tensor_shape_str(5, spec[2].shape, buf, sizeof buf), "[4,8,1,1,1]"), "shape str %s", buf);
    CHECK(avs_tensor_same_shape(1, spec[1].shape, 1, spec[1].shape) &&
          !avs_tensor_same_shape(4, spec[0].shape, 1, spec[1].shape), "same_shape");
    avs_tensor_set_free(&s);
    return check_summary("test_tensor");
}
