/* backend/prof.c: a profiling wrapper around the active backend table (backend/ops.h).
 * avs_ops_profile(1) makes avs_ops() return wrappers that time every call of every primitive
 * (backend/ops_list.h), per primitive and (convs, GEMMs) per geometry; memory operations and
 * the time between two calls (host work between primitives) are booked as "glue". avs_ops_profile_print
 * writes the table, largest first. Off by default: the plain table costs nothing.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "backend/cpu/cpu.h"
#include "backend/ops.h"
#include "backend/ops_list.h"

#define NSLOT 512

struct slot {
    char key[96];
    double sec, flop;
    long calls;
};

static struct slot slots[NSLOT];
static int nslots;
static double last_end;     /* when the previous wrapped call returned (0: none yet) */
static const struct avs_ops *base;
static struct avs_ops prof;
static int enabled;

static struct slot *slot_of(const char *key)
{
    for (int i = 0; i < nslots; i++)
        if (!strcmp(slots[i].key, key))
            return &slots[i];
    AVS_ASSERT(nslots < NSLOT);
    struct slot *s = &slots[nslots++];
    snprintf(s->key, sizeof s->key, "%s", key);
    return s;
}

static double begin(void)
{
    double t = omp_get_wtime();
    if (last_end > 0)
        slot_of("glue (between primitives)")->sec += t - last_end;
    return t;
}

static void end(const char *key, double t0, double flop)
{
    double t = omp_get_wtime();
    struct slot *s = slot_of(key);
    s->sec += t - t0, s->flop += flop, s->calls++;
    last_end = t;
}

static void conv_key(char *key, size_t n, const char *what, const struct avs_conv2d *g)
{
    int wino = strncmp(what, "conv bwdd", 9) ? avs_cpu_conv_uses_winograd(g)
                                             : avs_cpu_conv_uses_winograd_bwd_data(g);
    const char *algo = wino ? "wino" : g->R == 1 && g->S == 1 ? "1x1" : "gemm";
    snprintf(key, n, "%s %s N%d %d->%d %dx%d k%d d%d", what, algo, g->N, g->C, g->K, g->H, g->W,
             g->R, g->dil);
}

static void p_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
    char key[96];
    snprintf(key, sizeof key, "gemm %c%c %dx%dx%d", ta ? 't' : 'n', tb ? 't' : 'n', M, N, K);
    double t0 = begin();
    base->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    end(key, t0, 2.0 * M * N * K);
}

static void tap_key(char *key, size_t n, const char *what, const struct avs_tapconv *g)
{
    snprintf(key, n, "%s N%d %d->%d %dx%d taps %d", what, g->N, g->C, g->K, g->H, g->W, g->n);
}

/* the convolutions: timed per geometry (keyfn names it), their FLOPs from flopfn */
#define WRAP_GEOM(name, label, keyfn, flopfn, params, args)                                    \
    static void p_##name params                                                                \
    {                                                                                          \
        char key[96];                                                                          \
        keyfn(key, sizeof key, label, g);                                                      \
        double t0 = begin();                                                                   \
        base->name args;                                                                       \
        end(key, t0, flopfn(g));                                                               \
    }

#define CONV_FWD_P                                                                             \
    (float *out, const float *in, const float *w, const float *b, const struct avs_conv2d *g, float *ws)
#define CONV_BWDD_P                                                                            \
    (float *din, const float *dout, const float *w, const struct avs_conv2d *g, float *ws)
#define CONV_BWDF_P                                                                            \
    (float *dw, float *db, const float *dout, const float *in, const struct avs_conv2d *g, float *ws)
#define TAP_FWD_P                                                                              \
    (float *out, const float *in, const float *w, const float *b, const struct avs_tapconv *g, float *ws)
#define TAP_BWDD_P                                                                             \
    (float *din, const float *dout, const float *w, const struct avs_tapconv *g, float *ws)
#define TAP_BWDF_P                                                                             \
    (float *dw, float *db, const float *dout, const float *in, const struct avs_tapconv *g, float *ws)

WRAP_GEOM(conv2d_fwd, "conv fwd ", conv_key, avs_conv2d_flops, CONV_FWD_P, (out, in, w, b, g, ws))
WRAP_GEOM(conv2d_bwd_data, "conv bwdd", conv_key, avs_conv2d_flops, CONV_BWDD_P, (din, dout, w, g, ws))
WRAP_GEOM(conv2d_bwd_data_set, "conv bwdd", conv_key, avs_conv2d_flops, CONV_BWDD_P,
          (din, dout, w, g, ws))
WRAP_GEOM(conv2d_bwd_filter, "conv bwdf", conv_key, avs_conv2d_flops, CONV_BWDF_P,
          (dw, db, dout, in, g, ws))
WRAP_GEOM(tapconv_fwd, "tapconv fwd ", tap_key, avs_tapconv_flops, TAP_FWD_P, (out, in, w, b, g, ws))
WRAP_GEOM(tapconv_bwd_data, "tapconv bwdd", tap_key, avs_tapconv_flops, TAP_BWDD_P,
          (din, dout, w, g, ws))
WRAP_GEOM(tapconv_bwd_filter, "tapconv bwdf", tap_key, avs_tapconv_flops, TAP_BWDF_P,
          (dw, db, dout, in, g, ws))

/* every primitive: timed per primitive (gemm and the convs then get the geometry wrappers) */
#define WRAP_VOID(name, params, args, ptrs)                                                    \
    static void q_##name params                                                                \
    {                                                                                          \
        double t0 = begin();                                                                   \
        base->name args;                                                                       \
        end(#name, t0, 0);                                                                     \
    }
#define WRAP_DOUBLE(name, params, args, ptrs)                                                  \
    static double q_##name params                                                              \
    {                                                                                          \
        double t0 = begin(), r_ = base->name args;                                             \
        end(#name, t0, 0);                                                                     \
        return r_;                                                                             \
    }
AVS_OPS_VOID(WRAP_VOID)
AVS_OPS_DOUBLE(WRAP_DOUBLE)
#define SET(name, params, args, ptrs) prof.name = q_##name;

const struct avs_ops *avs_ops_profiled(const struct avs_ops *b)
{
    if (!enabled)
        return b;
    if (base != b) {
        base = b, prof = *b;
        AVS_OPS_VOID(SET)
        AVS_OPS_DOUBLE(SET)
        prof.gemm = p_gemm, prof.conv2d_fwd = p_conv2d_fwd, prof.conv2d_bwd_data = p_conv2d_bwd_data;
        prof.conv2d_bwd_filter = p_conv2d_bwd_filter;
        prof.conv2d_bwd_data_set = p_conv2d_bwd_data_set;
        prof.tapconv_fwd = p_tapconv_fwd, prof.tapconv_bwd_data = p_tapconv_bwd_data;
        prof.tapconv_bwd_filter = p_tapconv_bwd_filter;
    }
    return &prof;
}

void avs_ops_profile(int on)
{
    enabled = on;
    nslots = 0, last_end = 0;
}

static int by_time(const void *a, const void *b)
{
    double x = ((const struct slot *)a)->sec, y = ((const struct slot *)b)->sec;
    return (x < y) - (x > y);
}

void avs_ops_profile_print(FILE *f, int steps)
{
    qsort(slots, (size_t)nslots, sizeof *slots, by_time);
    double total = 0;
    for (int i = 0; i < nslots; i++)
        total += slots[i].sec;
    fprintf(f, "%-44s %9s %6s %7s %8s\n", "primitive (per step)", "ms", "%", "calls", "GFLOP/s");
    for (int i = 0; i < nslots; i++) {
        const struct slot *s = &slots[i];
        fprintf(f, "%-44s %9.2f %6.1f %7.1f", s->key, 1e3 * s->sec / steps, 100 * s->sec / total,
                (double)s->calls / steps);
        if (s->flop > 0)
            fprintf(f, " %8.1f", s->flop / s->sec / 1e9);
        fputc('\n', f);
    }
    fprintf(f, "%-44s %9.2f\n", "total", 1e3 * total / steps);
}
