/* train/ckpt.c: see ckpt.h. */
#include "train/ckpt.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "model/params.h"

#define FORMAT "avs-c3n"

static char *state_json(const struct avs_train_state *st)
{
    return avs_sprintf("{\"epoch\": %d, \"step\": %d, \"adam_step\": %ld, \"loss_sum\": \"%.17g\", "
                       "\"loss_n\": %d, \"best_miou\": \"%.17g\", \"best_epoch\": %d}", st->epoch,
                       st->step, st->adam_step, st->loss_sum, st->loss_n, st->best_miou,
                       st->best_epoch);
}

/* Tensors in the order of version 1 files: parameters, buffers, num_batches_tracked, then
 * (last) the Adam moments; each set through host copies (model/params.h). */
int avs_ckpt_save(const char *path, const struct avs_c3n_head *h, const char *config,
                  const struct avs_train_state *st, struct avs_err *err)
{
    struct avs_st_writer *w = avs_st_writer_new();
    struct avs_params_stage ps = {0};
    char nbt[4][64];
    int64_t nb[4], one = 1;
    avs_params_stage_add(&ps, w, &h->params, NULL);
    avs_params_stage_add(&ps, w, &h->bufs, NULL);
    for (int s = 0; s < 4; s++)
        if (h->cfg.tpavi >> s & 1) {
            snprintf(nbt[s], sizeof nbt[s], "%s%d.W_z.1.num_batches_tracked",
                     avs_c3n_tpavi_prefix(&h->cfg), s + 1);
            nb[s] = h->bn_batches[s];
            avs_st_writer_add(w, nbt[s], AVS_ST_I64, 0, &one, &nb[s]);
        }
    char *sj = NULL;
    if (st) {
        avs_params_stage_add(&ps, w, &h->m, "adam.m.");
        avs_params_stage_add(&ps, w, &h->v, "adam.v.");
        sj = state_json(st);
        avs_st_writer_meta(w, "state", sj);
    }
    avs_st_writer_meta(w, "format", FORMAT);
    avs_st_writer_meta(w, "config", config);
    int rc = avs_ckpt_seal(w, path, err) ? -1 : avs_st_writer_save(w, path, err);
    avs_st_writer_free(&w);
    avs_params_stage_free(&ps);
    free(sj);
    return rc;
}

#define SUM_KEY "checksum"

int avs_ckpt_seal(struct avs_st_writer *w, const char *path, struct avs_err *err)
{
    char v[16], sum[32];
    if (avs_st_writer_check_finite(w, path, err))
        return avs_err_wrap(err, "checkpoint");
    snprintf(v, sizeof v, "%d", AVS_CKPT_VERSION);
    avs_st_writer_meta(w, "version", v);
    snprintf(sum, sizeof sum, "xxh3:%016llx",
             (unsigned long long)avs_st_writer_digest(w, SUM_KEY));
    avs_st_writer_meta(w, SUM_KEY, sum);
    return 0;
}

/* Version 2: the stored checksum equals the file's digest. */
static int check_sum(const struct avs_st_file *f, struct avs_err *err)
{
    const char *stored = avs_st_meta(f, SUM_KEY);
    char sum[32];
    snprintf(sum, sizeof sum, "xxh3:%016llx", (unsigned long long)avs_st_digest(f, SUM_KEY));
    if (stored && !strcmp(stored, sum))
        return 0;
    return avs_err_set(err, "%s: checkpoint damaged: %s%s, its contents give %s; do not use it: "
                       "take the run's other checkpoint (best.safetensors or last.safetensors, "
                       "each verified the same way) or train the run again", f->path,
                       stored ? "stored checksum " : "no checksum", stored ? stored : "", sum);
}

int avs_ckpt_verify(const struct avs_st_file *f, struct avs_err *err)
{
    const char *vs = avs_st_meta(f, "version");
    int v = vs ? atoi(vs) : 0;
    if (v > AVS_CKPT_VERSION || v < 1)
        return avs_err_set(err, "%s: checkpoint version \"%s\": this avs-train reads 1..%d (a newer "
                           "avs-train wrote it, or the file is damaged)", f->path, vs ? vs : "none",
                           AVS_CKPT_VERSION);
    if (v >= 2 && check_sum(f, err))
        return -1;
    if (v == 1)
        avs_log_warn("%s: checkpoint version 1 has no checksum: loaded unverified (checkpoints "
                     "saved from now on carry one)", f->path);
    return avs_st_check_finite(f, err) ? avs_err_wrap(err, "checkpoint refused") : 0;
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
    /* The counters are integers 0..INT_MAX (adam_step 0..2^53) before the casts. */
    static const struct { const char *key; double hi; } cnt[] = {
        {"epoch", INT_MAX}, {"step", INT_MAX}, {"adam_step", 0x1p53},
        {"loss_n", INT_MAX}, {"best_epoch", INT_MAX}};
    double v[5];
    for (int i = 0; i < 5; i++) {
        v[i] = jnum(j, cnt[i].key);
        if (!(v[i] >= 0 && v[i] <= cnt[i].hi && v[i] == floor(v[i]))) {
            cJSON_Delete(j);
            return avs_err_set(err, "%s: damaged training state (%s = %.10g, need an integer "
                               "0..%.0f): resume from a copy of the run, or start a new --run",
                               path, cnt[i].key, v[i], cnt[i].hi);
        }
    }
    st->epoch = (int)v[0];
    st->step = (int)v[1];
    st->adam_step = (long)v[2];
    st->loss_sum = jnum(j, "loss_sum");
    st->loss_n = (int)v[3];
    st->best_miou = jnum(j, "best_miou");
    st->best_epoch = (int)v[4];
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
    if (avs_ckpt_verify(*f, err)) {
        avs_st_close(f);
        return -1;
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

/* The head's loader meets the Adam moments (adam.m.<name>, adam.v.<name>): they are loaded
 * in their own passes (load_moments) or, for weights only, skipped. */
static int skip_moments(void *ctx, const struct avs_st_tensor *t, struct avs_err *err)
{
    (void)ctx, (void)err;
    return !strncmp(t->name, "adam.m.", 7) || !strncmp(t->name, "adam.v.", 7);
}

/* set <- the tensors named prefix + name (every one must be there) */
static int load_moments(const struct avs_st_file *f, struct avs_tensor_set *set, const char *prefix,
                        struct avs_err *err)
{
    char *seen = avs_calloc((size_t)set->n + 1, 1);
    struct avs_params_io io = {.sets = {set}, .nsets = 1, .prefix = prefix, .seen = seen,
                               .what = "the optimiser state"};
    int rc = avs_params_load(f, &io, err);
    const char *miss = rc ? NULL : avs_params_missing(&io, seen, NULL);
    if (miss)
        rc = avs_err_set(err, "%s: missing optimiser tensor %s%s: not a `last` checkpoint", f->path,
                         prefix, miss);
    free(seen);
    return rc ? -1 : 0;
}

int avs_ckpt_load(const char *path, struct avs_c3n_head *h, char **config,
                  struct avs_train_state *st, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    int rc = -1;
    if (open_ckpt(path, &f, err) || avs_c3n_head_load_from(h, f, skip_moments, NULL, NULL, err))
        goto out;
    if (st) {
        if (load_moments(f, &h->m, "adam.m.", err) || load_moments(f, &h->v, "adam.v.", err) ||
            parse_state(avs_st_meta(f, "state"), st, path, err))
            goto out;
        h->adam_step = st->adam_step;
    }
    if (config) {
        const char *c = avs_st_meta(f, "config");
        *config = avs_strdup(c ? c : "{}");
    }
    rc = 0;
out:
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
