/* model/params.c: loading and saving a network's tensor sets (params.h). */
#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *strip_module(const char *name)
{
    return strncmp(name, "module.", 7) ? name : name + 7;
}

/* name without the io's prefix, or NULL when the prefix is not there */
static const char *unprefixed(const struct avs_params_io *io, const char *name)
{
    name = strip_module(name);
    if (!io->prefix)
        return name;
    size_t n = strlen(io->prefix);
    return strncmp(name, io->prefix, n) ? NULL : name + n;
}

/* tensor t of the file into tensor i of set s: shape checked, converted, uploaded */
static int load_one(struct avs_tensor_set *s, int i, const struct avs_st_tensor *t,
                    const char *path, struct avs_err *err)
{
    const struct avs_tensor *dst = &s->t[i];
    int sh[AVS_ST_MAXDIM];
    for (int d = 0; d < t->ndim && d < AVS_ST_MAXDIM; d++)
        sh[d] = t->shape[d] > 0x7fffffff ? -1 : (int)t->shape[d];
    if (t->ndim > AVS_ST_MAXDIM || !avs_tensor_same_shape(t->ndim, sh, dst->ndim, dst->shape)) {
        char a[96], b[96];
        return avs_err_set(err, "%s: tensor \"%s\" has shape %s, the model needs %s", path,
                           t->name, avs_tensor_shape_str(t->ndim < AVS_ST_MAXDIM ? t->ndim : AVS_ST_MAXDIM, sh, a, sizeof a),
                           avs_tensor_shape_str(dst->ndim, dst->shape, b, sizeof b));
    }
    size_t n = avs_tensor_numel(dst);
    float *host = avs_malloc((n ? n : 1) * sizeof(float));
    int rc = avs_st_read_f32(t, host, n, err);
    if (rc == 0)
        avs_tensor_set_upload(s, i, host);
    else
        avs_err_wrap(err, "%s", path);
    free(host);
    return rc ? -1 : 0;
}

/* set and index of name in the io's sets; -1 if none */
static int find(const struct avs_params_io *io, const char *name, int *set)
{
    for (int s = 0; s < io->nsets; s++) {
        int i = avs_tensor_set_find(io->sets[s], name);
        if (i >= 0) {
            *set = s;
            return i;
        }
    }
    return -1;
}

static int offset_of(const struct avs_params_io *io, int set)
{
    int o = 0;
    for (int s = 0; s < set; s++)
        o += io->sets[s]->n;
    return o;
}

const char *avs_params_missing(const struct avs_params_io *io, const char *seen, int *set)
{
    for (int s = 0, o = 0; s < io->nsets; o += io->sets[s]->n, s++)
        for (int i = 0; i < io->sets[s]->n; i++)
            if (!seen[o + i]) {
                if (set)
                    *set = s;
                return io->sets[s]->spec[i].name;
            }
    return NULL;
}

/* Tensors that do not fit (unknown names, other shapes): the first one's full message, then
 * how many more and the first few of their names, so another architecture shows at once. */
struct misfits {
    int n;
    char first[sizeof(((struct avs_err *)0)->msg)];
    char names[200];
};

static void misfit_add(struct misfits *m, const char *name, const char *msg)
{
    if (m->n++ == 0) {
        snprintf(m->first, sizeof m->first, "%s", msg);
        return;
    }
    size_t o = strlen(m->names);
    if (m->n <= 4)
        snprintf(m->names + o, sizeof m->names - o, "%s\"%.50s\"", o ? ", " : "", name);
}

static int misfit_report(const struct misfits *m, const char *what, struct avs_err *err)
{
    if (m->n == 1)
        return avs_err_set(err, "%s", m->first);
    return avs_err_set(err, "%s (and %d more tensors that do not fit %s: %s%s)", m->first,
                       m->n - 1, what, m->names, m->n > 4 ? ", ..." : "");
}

/* The first missing tensor, and how many and which others are missing. */
static int missing_report(const struct avs_params_io *io, const char *seen, const char *path,
                          const char *what, struct avs_err *err)
{
    int n = 0;
    char more[200] = "";
    const char *first = NULL;
    for (int s = 0, o = 0; s < io->nsets; o += io->sets[s]->n, s++)
        for (int i = 0; i < io->sets[s]->n; i++) {
            if (seen[o + i])
                continue;
            const char *nm = io->sets[s]->spec[i].name;
            size_t l = strlen(more);
            if (n == 0)
                first = nm;
            else if (n <= 3)
                snprintf(more + l, sizeof more - l, "%s\"%.50s\"", l ? ", " : "", nm);
            n++;
        }
    if (n == 0)
        return 0;
    const char *pre = io->prefix ? io->prefix : "";
    if (n == 1)
        return avs_err_set(err, "%s: missing tensor \"%s%s\" of %s (a checkpoint of another "
                           "variant or configuration?)", path, pre, first, what);
    return avs_err_set(err, "%s: missing tensor \"%s%s\" of %s and %d more (%s%s): a checkpoint "
                       "of another variant or configuration?", path, pre, first, what, n - 1, more,
                       n > 4 ? ", ..." : "");
}

int avs_params_load(const struct avs_st_file *f, const struct avs_params_io *io,
                    struct avs_err *err)
{
    AVS_ASSERT(io->nsets >= 1 && io->nsets <= AVS_PARAMS_MAXSETS);
    int total = offset_of(io, io->nsets), rc = -1;
    char *seen = io->seen ? io->seen : avs_calloc((size_t)total + 1, 1);
    const char *what = io->what ? io->what : "the model";
    struct misfits *m = avs_calloc(1, sizeof *m);
    struct avs_err e1 = {{0}};
    if (io->ignored)
        *io->ignored = 0;
    for (int k = 0; k < f->n; k++) {
        const struct avs_st_tensor *t = &f->t[k];
        const char *name = unprefixed(io, t->name);
        int s, i = name ? find(io, name, &s) : -1, r;
        if (i >= 0) {
            if (load_one(io->sets[s], i, t, f->path, &e1))
                misfit_add(m, t->name, e1.msg);
            else
                seen[offset_of(io, s) + i] = 1;
        } else if (io->extra && (r = io->extra(io->ctx, t, err)) != 0) {
            if (r < 0)
                goto out;
        } else if (io->ignored || (io->prefix && !name)) {
            if (io->ignored)
                (*io->ignored)++;
        } else {
            avs_err_set(&e1, "%s: unknown tensor \"%s\": not a tensor of %s (another variant or "
                        "configuration?)", f->path, t->name, what);
            misfit_add(m, t->name, e1.msg);
        }
    }
    if (m->n)
        misfit_report(m, what, err);
    else if (!io->seen && missing_report(io, seen, f->path, what, err))
        goto out;
    else
        rc = 0;
out:
    free(m);
    if (!io->seen)
        free(seen);
    return rc;
}

int avs_params_load_file(const char *path, const struct avs_params_io *io, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    int rc = avs_st_open(path, &f, err) ? -1 : avs_params_load(f, io, err);
    avs_st_close(&f);
    return rc;
}

void avs_params_stage_add(struct avs_params_stage *st, struct avs_st_writer *w,
                          const struct avs_tensor_set *s, const char *prefix)
{
    float *host = avs_tensor_set_to_host(s);
    st->blocks = avs_realloc(st->blocks, (size_t)(st->nblocks + 1) * sizeof *st->blocks);
    st->blocks[st->nblocks++] = host;
    for (int i = 0; i < s->n; i++) {
        const float *d = host + (s->t[i].data - s->arena.base);
        const char *name = s->spec[i].name;
        if (prefix) {
            st->names = avs_realloc(st->names, (size_t)(st->nnames + 1) * sizeof *st->names);
            name = st->names[st->nnames++] = avs_sprintf("%s%s", prefix, name);
        }
        avs_st_writer_add_f32(w, name, s->t[i].ndim, s->t[i].shape, d);
    }
}

void avs_params_stage_free(struct avs_params_stage *st)
{
    for (int i = 0; i < st->nblocks; i++)
        free(st->blocks[i]);
    for (int i = 0; i < st->nnames; i++)
        free(st->names[i]);
    free(st->blocks), free(st->names);
    memset(st, 0, sizeof *st);
}
