/* train/ckpt.c: see ckpt.h. */
#include "train/ckpt.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"

#define FORMAT "avs-c3n"

static void add_set(struct avs_st_writer *w, const struct avs_tensor_set *s, const char *prefix,
                    char **names)
{
    for (int i = 0; i < s->n; i++) {
        const char *n = s->spec[i].name;
        if (prefix) {
            names[i] = avs_sprintf("%s%s", prefix, n);
            n = names[i];
        }
        avs_st_writer_add_f32(w, n, s->t[i].ndim, s->t[i].shape, s->t[i].data);
    }
}

static char *state_json(const struct avs_train_state *st)
{
    return avs_sprintf("{\"epoch\": %d, \"step\": %d, \"adam_step\": %ld, \"loss_sum\": \"%.17g\", "
                       "\"loss_n\": %d, \"best_miou\": \"%.17g\", \"best_epoch\": %d}", st->epoch,
                       st->step, st->adam_step, st->loss_sum, st->loss_n, st->best_miou,
                       st->best_epoch);
}

int avs_ckpt_save(const char *path, const struct avs_c3n_head *h, const char *config,
                  const struct avs_train_state *st, struct avs_err *err)
{
    struct avs_st_writer *w = avs_st_writer_new();
    char **mn = avs_calloc((size_t)h->np + 1, sizeof *mn), **vn = avs_calloc((size_t)h->np + 1, sizeof *vn);
    char nbt[4][64];
    int64_t nb[4], one = 1;
    add_set(w, &h->params, NULL, NULL);
    add_set(w, &h->bufs, NULL, NULL);
    for (int s = 0; s < 4; s++)
        if (h->cfg.tpavi >> s & 1) {
            snprintf(nbt[s], sizeof nbt[s], "tpavi_%d.W_z.1.num_batches_tracked", s + 1);
            nb[s] = h->bn_batches[s];
            avs_st_writer_add(w, nbt[s], AVS_ST_I64, 0, &one, &nb[s]);
        }
    char *sj = NULL;
    if (st) {
        add_set(w, &h->m, "adam.m.", mn);
        add_set(w, &h->v, "adam.v.", vn);
        sj = state_json(st);
        avs_st_writer_meta(w, "state", sj);
    }
    avs_st_writer_meta(w, "format", FORMAT);
    avs_st_writer_meta(w, "version", "1");
    avs_st_writer_meta(w, "config", config);
    int rc = avs_st_writer_save(w, path, err);
    avs_st_writer_free(&w);
    for (int i = 0; i < h->np; i++)
        free(mn[i]), free(vn[i]);
    free(mn), free(vn), free(sj);
    return rc;
}

static int load_into(struct avs_tensor_set *set, int k, const struct avs_st_tensor *t,
                     const char *path, struct avs_err *err)
{
    struct avs_tensor *d = &set->t[k];
    int sh[AVS_ST_MAXDIM];
    for (int i = 0; i < t->ndim; i++)
        sh[i] = (int)t->shape[i];
    if (!avs_tensor_same_shape(t->ndim, sh, d->ndim, d->shape)) {
        char a[96], b[96];
        return avs_err_set(err, "%s: tensor \"%s\" has shape %s, the model needs %s: the "
                           "checkpoint belongs to another configuration", path, t->name,
                           avs_tensor_shape_str(t->ndim, sh, a, sizeof a),
                           avs_tensor_shape_str(d->ndim, d->shape, b, sizeof b));
    }
    return avs_st_read_f32(t, d->data, avs_tensor_numel(d), err) ? avs_err_wrap(err, "%s", path) : 0;
}

static double jnum(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsString(v))
        return strtod(v->valuestring, NULL);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int parse_state(const char *txt, struct avs_train_state *st, const char *path,
                       struct avs_err *err)
{
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    if (!j)
        return avs_err_set(err, "%s: no training state in the checkpoint (a `best` file?): "
                           "resume needs runs/<run>/last.safetensors", path);
    st->epoch = (int)jnum(j, "epoch");
    st->step = (int)jnum(j, "step");
    st->adam_step = (long)jnum(j, "adam_step");
    st->loss_sum = jnum(j, "loss_sum");
    st->loss_n = (int)jnum(j, "loss_n");
    st->best_miou = jnum(j, "best_miou");
    st->best_epoch = (int)jnum(j, "best_epoch");
    st->seconds = 0;
    cJSON_Delete(j);
    return 0;
}

static int open_ckpt(const char *path, struct avs_st_file **f, struct avs_err *err)
{
    if (avs_st_open(path, f, err))
        return -1;
    const char *fmt = avs_st_meta(*f, "format");
    if (!fmt || strcmp(fmt, FORMAT)) {
        avs_st_close(f);
        return avs_err_set(err, "%s: not an avs-train checkpoint (no \"format\": \"%s\" metadata); "
                           "official weights load with avs-predict --weights", path, FORMAT);
    }
    return 0;
}

int avs_ckpt_config(const char *path, char **config, struct avs_err *err)
{
    struct avs_st_file *f;
    if (open_ckpt(path, &f, err))
        return -1;
    const char *c = avs_st_meta(f, "config");
    *config = avs_strdup(c ? c : "{}");
    avs_st_close(&f);
    return 0;
}

static int load_tensor(struct avs_c3n_head *h, const struct avs_st_tensor *t, int want_optim,
                       char *seen, const char *path, struct avs_err *err)
{
    const char *n = t->name;
    int k;
    if (!strncmp(n, "adam.m.", 7) || !strncmp(n, "adam.v.", 7)) {
        struct avs_tensor_set *s = n[5] == 'm' ? &h->m : &h->v;
        if (!want_optim)
            return 0;
        if ((k = avs_tensor_set_find(s, n + 7)) < 0)
            return avs_err_set(err, "%s: unknown tensor \"%s\"", path, n);
        seen[2 * (h->np + h->nb) + (n[5] == 'm' ? 0 : h->np) + k] = 1;
        return load_into(s, k, t, path, err);
    }
    if ((k = avs_tensor_set_find(&h->params, n)) >= 0) {
        seen[k] = 1;
        return load_into(&h->params, k, t, path, err);
    }
    if ((k = avs_tensor_set_find(&h->bufs, n)) >= 0) {
        seen[h->np + k] = 1;
        return load_into(&h->bufs, k, t, path, err);
    }
    if (strstr(n, ".W_z.1.num_batches_tracked") && !strncmp(n, "tpavi_", 6) && n[6] >= '1' &&
        n[6] <= '4' && t->dtype == AVS_ST_I64 && t->numel == 1) {
        int64_t v;
        memcpy(&v, t->data, 8);
        h->bn_batches[n[6] - '1'] = (long)v;
        return 0;
    }
    return avs_err_set(err, "%s: unknown tensor \"%s\": the checkpoint belongs to another "
                       "configuration (switches, width, backbone)", path, n);
}

int avs_ckpt_load(const char *path, struct avs_c3n_head *h, char **config,
                  struct avs_train_state *st, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    int n_all = h->np + h->nb, rc = -1;
    char *seen = avs_calloc((size_t)(2 * n_all + 2 * h->np + 1), 1);
    if (open_ckpt(path, &f, err))
        goto out;
    for (int i = 0; i < f->n; i++)
        if (load_tensor(h, &f->t[i], st != NULL, seen, path, err))
            goto out;
    for (int i = 0; i < n_all; i++)
        if (!seen[i]) {
            avs_err_set(err, "%s: missing tensor \"%s\"", path,
                        i < h->np ? h->pspec[i].name : h->bspec[i - h->np].name);
            goto out;
        }
    if (st) {
        for (int i = 0; i < 2 * h->np; i++)
            if (!seen[2 * n_all + i]) {
                avs_err_set(err, "%s: missing optimiser tensor adam.%c.%s: not a `last` checkpoint",
                            path, i < h->np ? 'm' : 'v', h->pspec[i % h->np].name);
                goto out;
            }
        if (parse_state(avs_st_meta(f, "state"), st, path, err))
            goto out;
        h->adam_step = st->adam_step;
    }
    if (config) {
        const char *c = avs_st_meta(f, "config");
        *config = avs_strdup(c ? c : "{}");
    }
    rc = 0;
out:
    free(seen);
    avs_st_close(&f);
    return rc;
}

int avs_ckpt_state(const char *path, struct avs_train_state *st, struct avs_err *err)
{
    struct avs_st_file *f;
    if (open_ckpt(path, &f, err))
        return -1;
    int rc = parse_state(avs_st_meta(f, "state"), st, path, err);
    avs_st_close(&f);
    return rc;
}
