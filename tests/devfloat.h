/* tests/devfloat.h: one float of device memory read or written from a test (finite-difference
 * probes nudge a parameter or an input in place, then read a gradient back); d may point
 * inside a tensor (tensors are carved from arenas by offset, backend/backend.h). Shared by the
 * fine-tune and neck tests. */
#ifndef AVS_TESTS_DEVFLOAT_H
#define AVS_TESTS_DEVFLOAT_H

#include "backend/backend.h"

static inline float get1(const float *d)
{
    float v;
    avs_dev_download(&v, d, 1);
    return v;
}

static inline void set1(float *d, float v)
{
    avs_dev_upload(d, &v, 1);
}

#endif
