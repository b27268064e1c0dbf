/* tests/fixture.h: reading reference tensors from safetensors fixtures in C tests.
 * Include after tests/check.h: a missing or unreadable tensor is a counted CHECK failure. */
#ifndef AVS_TESTS_FIXTURE_H
#define AVS_TESTS_FIXTURE_H

#include <stdlib.h>

#include "core/safetensors.h"
#include "tests/check.h"

/* Tensor `name` of f as a malloc'd float array (*n elements), or NULL after a failed CHECK. */
static inline float *fixture_f32(const struct avs_st_file *f, const char *name, size_t *n)
{
    const struct avs_st_tensor *t = avs_st_find(f, name);
    struct avs_err err;
    CHECK(t != NULL, "fixture tensor %s", name);
    if (!t)
        return NULL;
    float *p = malloc(t->numel * sizeof(float));
    CHECK(avs_st_read_f32(t, p, t->numel, &err) == 0, "%s", err.msg);
    *n = t->numel;
    return p;
}

#endif
