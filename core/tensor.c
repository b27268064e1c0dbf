/* core/tensor.c: see tensor.h. */
#include "core/tensor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

size_t avs_tensor_numel(const struct avs_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

size_t avs_tensor_spec_numel(const struct avs_tensor_spec *s)
{
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= (size_t)s->shape[i];
    return n;
}

char *avs_tensor_shape_str(int ndim, const int *shape, char *buf, size_t len)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%d", i ? "," : "", shape[i]);
    if (k < len)
        snprintf(buf + k, len - k, "]");
    return buf;
}

int avs_tensor_same_shape(int ndim_a, const int *a, int ndim_b, const int *b)
{
    if (ndim_a != ndim_b)
        return 0;
    for (int i = 0; i < ndim_a; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

void avs_spec_add(struct avs_spec_list *l, int ndim, const int *shape, const char *fmt, ...)
{
    AVS_ASSERT(ndim >= 0 && ndim <= AVS_TENSOR_MAXDIM);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = avs_realloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    AVS_ASSERT(k > 0 && (size_t)k < sizeof buf);
    struct avs_tensor_spec *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    s->name = avs_strdup(buf);
    s->ndim = ndim;
    memcpy(s->shape, shape, (size_t)ndim * sizeof(int));
}

void avs_spec_list_free(struct avs_spec_list *l)
{
    for (int i = 0; l && i < l->n; i++)
        free((char *)l->v[i].name);
    if (l) {
        free(l->v);
        memset(l, 0, sizeof *l);
    }
}
