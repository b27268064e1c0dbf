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

/* Adam moments of a `last` file: adam.m.<name>, adam.v.<name> (ignored unless wanted). */
struct optim_ctx {
    struct avs_c3n_head *h;
    int want;
    char *seen; /* [2*np]: m then v */
    const char *path;
};

static int load_optim(void *ctx, const struct avs_st_tensor *t, struct avs_err *err)
{
    struct optim_ctx *c = ctx;
    const char *n = t->name;
    if (strncmp(n, "adam.m.", 7) && strncmp(n, "adam.v.", 7))
        return 0;
    if (!c->want)
        return 1;
    struct avs_tensor_set *s = n[5] == 'm' ? &c->h->m : &c->h->v;
    int k = avs_tensor_set_find(s, n + 7);
    if (k < 0)
        return 0; /* reported as an unknown tensor */
    c->seen[(n[5] == 'm' ? 0 : c->h->np) + k] = 1;
    return avs_c3n_head_load_tensor(s, k, t, c->path, err) ? -1 : 1;
}

int avs_ckpt_load(const char *path, struct avs_c3n_head *h, char **config,
                  struct avs_train_state *st, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    struct optim_ctx oc = {h, st != NULL, avs_calloc((size_t)(2 * h->np + 1), 1), path};
    int rc = -1;
    if (open_ckpt(path, &f, err) || avs_c3n_head_load_from(h, f, load_optim, &oc, NULL, err))
        goto out;
    if (st) {
        for (int i = 0; i < 2 * h->np; i++)
            if (!oc.seen[i]) {
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
    free(oc.seen);
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
