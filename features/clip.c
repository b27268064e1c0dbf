/* features/clip.c: a feature set's encoders rebuilt from its recorded config, run on one clip
 * decoded in memory (avs_feat_enc_open, avs_feat_clip: features/features.h). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/hash.h"
#include "features/run.h"
#include "ingest/decode.h"
#include "store/store.h"

#define RANDOM_PREFIX "random-init "

/* Text of the set's config column (malloc'd). */
static int set_config(sqlite3 *db, const char *set, char **config, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT config FROM feature_sets WHERE name = ?1", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, set, -1, SQLITE_TRANSIENT);
    int rc = -1;
    if (sqlite3_step(st) != SQLITE_ROW || !sqlite3_column_text(st, 0))
        avs_err_set(err, "no feature set \"%s\" in the index %s (`avs-features show` lists them; "
                    "make it with avs-features --set %s)", set, sqlite3_db_filename(db, "main"), set);
    else {
        *config = avs_strdup((const char *)sqlite3_column_text(st, 0));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* "random-init N": 1 with *seed; 0 for anything else. */
static int random_seed(const char *s, uint64_t *seed)
{
    if (!s || strncmp(s, RANDOM_PREFIX, strlen(RANDOM_PREFIX)))
        return 0;
    char *end;
    *seed = strtoull(s + strlen(RANDOM_PREFIX), &end, 10);
    return *end == '\0';
}

/* A random part's seed must agree with the others' (avs-features uses one seed for all). */
static int take_seed(const char *set, uint64_t s, uint64_t *seed, int *have, struct avs_err *err)
{
    if (*have && *seed != s)
        return avs_err_set(err, "feature set \"%s\": its config names two random-init seeds (%llu, "
                           "%llu); avs-features never writes that: remake the set", set,
                           (unsigned long long)*seed, (unsigned long long)s);
    *seed = s, *have = 1;
    return 0;
}

/* One recorded weight file against the one given: *use = the file to load. */
static int check_file(const char *set, const char *what, const char *opt, const char *recorded,
                      const char *hash, const char *given, const char **use, struct avs_err *err)
{
    *use = NULL;
    if (!given)
        return avs_err_set(err, "feature set \"%s\" was made with %s %s: give that file (%s)",
                           set, what, recorded, opt);
    if (!hash)
        return avs_err_set(err, "feature set \"%s\": its config has no hash for %s %s: remake "
                           "the set with avs-features", set, what, recorded);
    char hex[33];
    if (avs_hash_file(given, hex, err))
        return avs_err_wrap(err, "%s (%s)", what, opt);
    if (strcmp(hex, hash))
        return avs_err_set(err, "%s: not the %s feature set \"%s\" was made with (%s, murmur3 %s; "
                           "this file is %s): give that file (%s), or make a feature set with "
                           "this one", given, what, set, recorded, hash, hex, opt);
    *use = given;
    return 0;
}

/* Which files to load and the seed of the random parts, from the config's encoder entries. */
static int resolve_files(const char *set, const cJSON *cfg, const struct avs_enc_files *files,
                         const char **vf, const char **af, const char **hf, uint64_t *seed,
                         int *have_seed, struct avs_err *err)
{
    const cJSON *vis = cJSON_GetObjectItemCaseSensitive(cfg, "visual");
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(cfg, "audio");
    const char *vw = jstr(vis, "weights"), *aw = jstr(aud, "weights"), *head = jstr(aud, "head");
    const char *vname = jstr(vis, "name");
    uint64_t s;
    *vf = *af = *hf = NULL;
    if (!vname || !vw || !aw)
        return avs_err_set(err, "feature set \"%s\": config without visual/audio weights entries: "
                           "remake the set with avs-features", set);
    if (random_seed(vw, &s)) {
        if (take_seed(set, s, seed, have_seed, err))
            return -1;
        if (files && files->visual)
            avs_log_warn("feature set \"%s\" has a random-init visual encoder: %s not used", set,
                         files->visual);
    } else {
        char opt[96];
        snprintf(opt, sizeof opt, "--visual %s=FILE", vname);
        if (check_file(set, "visual weights", opt, vw, jstr(vis, "weights_hash"),
                       files ? files->visual : NULL, vf, err))
            return -1;
    }
    if (random_seed(aw, &s)) {
        if (take_seed(set, s, seed, have_seed, err))
            return -1;
        if (files && (files->audio || files->audio_head))
            avs_log_warn("feature set \"%s\" has a random-init audio encoder: %s not used", set,
                         files->audio ? files->audio : files->audio_head);
        return 0;
    }
    if (check_file(set, "audio weights", "--audio vggish=FILE", aw, jstr(aud, "weights_hash"),
                   files ? files->audio : NULL, af, err))
        return -1;
    if (head)
        return check_file(set, "AudioSet head", "--audio-head FILE", head, jstr(aud, "head_hash"),
                          files ? files->audio_head : NULL, hf, err);
    if (files && files->audio_head)
        avs_log_warn("feature set \"%s\" took its AudioSet head from the audio weights: %s not used",
                     set, files->audio_head);
    return 0;
}

/* S from the index by the recorded vectors hash, or the random-init seed. */
static int resolve_similarity(struct avs_feat_enc *e, sqlite3 *db, const char *set,
                              const cJSON *cfg, uint64_t seed, int have_seed, struct avs_err *err)
{
    const cJSON *sim = cJSON_GetObjectItemCaseSensitive(cfg, "similarity");
    const char *vec = jstr(sim, "vectors"), *hash = jstr(sim, "vectors_hash");
    uint64_t s;
    if (random_seed(vec, &s)) {
        if (take_seed(set, s, &seed, &have_seed, err))
            return -1;
        avs_feat_sim_random(e, s);
        return 0;
    }
    if (!vec || !hash)
        return avs_err_set(err, "feature set \"%s\": config without the similarity's vectors_hash: "
                           "remake the set with avs-features", set);
    int r = 0, c = 0;
    if (avs_labelsim_load(db, hash, &e->S, &r, &c, err))
        return avs_err_wrap(err, "feature set \"%s\" (label similarity from %s)", set, vec);
    if (r != e->V || c != e->A)
        return avs_err_set(err, "feature set \"%s\": the label similarity of %s in the index is "
                           "%d x %d, the encoders give %d x %d: re-store it with avs-features "
                           "--vectors %s", set, vec, r, c, e->V, e->A, vec);
    return 0;
}

static int parse_image(struct avs_feat_enc *e, const char *set, const cJSON *cfg,
                       struct avs_err *err)
{
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(cfg, "image_size");
    const char *pol = jstr(cfg, "logmel_policy");
    int p = pol ? avs_logmel_policy_parse(pol) : -1;
    if (!cJSON_IsArray(sz) || cJSON_GetArraySize(sz) != 2 || p < 0)
        return avs_err_set(err, "feature set \"%s\": config without image_size or logmel_policy: "
                           "remake the set with avs-features", set);
    e->H = cJSON_GetArrayItem(sz, 0)->valueint, e->W = cJSON_GetArrayItem(sz, 1)->valueint;
    if (e->H < 32 || e->W < 32 || e->H % 32 || e->W % 32 || e->H > 4096 || e->W > 4096)
        return avs_err_set(err, "feature set \"%s\": image_size %dx%d is not usable (multiples of "
                           "32 up to 4096)", set, e->W, e->H);
    e->policy = (enum avs_logmel_policy)p;
    return 0;
}

int avs_feat_enc_open(struct avs_feat_enc *e, sqlite3 *db, const char *set,
                      const struct avs_enc_files *files, struct avs_err *err)
{
    memset(e, 0, sizeof *e);
    char *text = NULL;
    cJSON *cfg = NULL;
    const char *vf, *af, *hf;
    uint64_t seed = 0;
    int have_seed = 0, rc = -1;
    if (set_config(db, set, &text, err))
        goto out;
    if (!(cfg = cJSON_Parse(text))) {
        avs_err_set(err, "feature set \"%s\": its config is not JSON: remake the set", set);
        goto out;
    }
    if (parse_image(e, set, cfg, err) ||
        resolve_files(set, cfg, files, &vf, &af, &hf, &seed, &have_seed, err))
        goto out;
    const char *vname = jstr(cJSON_GetObjectItemCaseSensitive(cfg, "visual"), "name");
    if (avs_feat_enc_load(e, vname, vf, af, hf, seed, err)) {
        avs_err_wrap(err, "feature set \"%s\"", set);
        goto out;
    }
    if (resolve_similarity(e, db, set, cfg, seed, have_seed, err) || avs_logmel_init(&e->mel, err))
        goto out;
    e->have_mel = 1;
    avs_feat_fields(e);
    rc = 0;
out:
    if (rc)
        avs_feat_enc_close(e);
    cJSON_Delete(cfg);
    free(text);
    return rc;
}

/* ---- one clip ---------------------------------------------------------------------------- */

struct clip_ctx {
    int H, W, got, cap;
    uint8_t *rgb;              /* [cap,H,W,3] */
    struct avs_clip_feat *f;   /* outputs (compute phase) */
};

static int on_frame(void *ctx, int k, const struct avs_image *img)
{
    struct clip_ctx *c = ctx;
    /* k restarts at 1 when the decoder falls back to counting frames (ingest/decode.c) */
    AVS_ASSERT(img->w == c->W && img->h == c->H && img->c == 3 && k >= 1 && k <= c->got + 1);
    size_t fs = (size_t)c->H * c->W * 3;
    if (k > c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->rgb = avs_realloc(c->rgb, (size_t)c->cap * fs);
    }
    memcpy(c->rgb + (size_t)(k - 1) * fs, img->data, fs);
    c->got = k;
    return 0;
}

static int clip_frame(void *ctx, int k, int flip, float *dst, struct avs_err *err)
{
    (void)err;
    struct clip_ctx *c = ctx;
    AVS_ASSERT(k >= 1 && k <= c->got);
    avs_store_norm_u8(dst, c->rgb + (size_t)(k - 1) * c->H * c->W * 3, 3, c->H, c->W, flip);
    return 0;
}

static int clip_record(void *ctx, int i, const float *const *rec, int target, int target_v,
                       struct avs_err *err)
{
    (void)err;
    struct avs_clip_feat *f = ((struct clip_ctx *)ctx)->f;
    AVS_ASSERT(i >= 0 && i < f->n);
    /* record fields (features/run.h): logmel, audio_emb, audio_logits, stage1..4, vlogits,
     * gradcam1..4, gradcam_v1..4 */
    memcpy(f->audio_emb + (size_t)i * f->E, rec[1], (size_t)f->E * sizeof(float));
    for (int s = 0; s < 4; s++) {
        size_t m = (size_t)f->C[s] * f->Hs[s] * f->Ws[s];
        memcpy(f->stage[s] + i * m, rec[3 + s], m * sizeof(float));
        memcpy(f->gradcam[s] + (size_t)i * f->C[s], rec[8 + s], (size_t)f->C[s] * sizeof(float));
        memcpy(f->gradcam_v[s] + (size_t)i * f->C[s], rec[12 + s], (size_t)f->C[s] * sizeof(float));
    }
    f->target[i] = target, f->target_v[i] = target_v;
    return 0;
}

static void feat_alloc(struct avs_clip_feat *f, const struct avs_feat_enc *e, int n)
{
    f->n = n, f->H = e->H, f->W = e->W, f->E = e->E;
    f->audio_emb = avs_malloc((size_t)n * f->E * sizeof(float));
    for (int s = 0; s < 4; s++) {
        f->C[s] = e->pvt.cfg.dims[s];
        f->Hs[s] = avs_pvt_side(e->H, s), f->Ws[s] = avs_pvt_side(e->W, s);
        f->stage[s] = avs_malloc((size_t)n * f->C[s] * f->Hs[s] * f->Ws[s] * sizeof(float));
        f->gradcam[s] = avs_malloc((size_t)n * f->C[s] * sizeof(float));
        f->gradcam_v[s] = avs_malloc((size_t)n * f->C[s] * sizeof(float));
    }
    f->target = avs_malloc((size_t)n * sizeof(int));
    f->target_v = avs_malloc((size_t)n * sizeof(int));
}

int avs_feat_clip(struct avs_feat_enc *e, const char *path, struct avs_clip_feat *out,
                  struct avs_err *err)
{
    AVS_ASSERT(e->have_pvt && e->have_vg && e->have_mel && e->S);
    struct avs_decode_opts o = {.out_w = e->W, .out_h = e->H, .frame_rule = AVS_FRAME_AVSBENCH};
    struct avs_decode_result res;
    memset(&res, 0, sizeof res);
    struct clip_ctx c = {.H = e->H, .W = e->W};
    struct avs_clip_feat f;
    memset(&f, 0, sizeof f);
    float *wave = NULL;
    int rc = -1;
    if (avs_decode_clip(path, &o, on_frame, &c, &res, err))
        goto out;
    int n = res.n_seconds;
    if (n < 1) {
        avs_err_set(err, "%s: %.3f s long: a clip needs at least 1 second (one frame and one "
                    "second of audio per second)", path, res.duration);
        goto out;
    }
    if (c.got != n) {
        avs_err_set(err, "%s: %d of its %d seconds have a frame (the decoder gave %d frames)", path,
                    c.got, n, res.frames_decoded);
        goto out;
    }
    wave = avs_malloc((size_t)n * AVS_LOGMEL_RATE * sizeof(float));
    /* exactly libsndfile's s16 -> float on the store's WAVs (scale 1/0x8000) */
    for (size_t i = 0; i < (size_t)n * AVS_LOGMEL_RATE; i++)
        wave[i] = (float)res.audio[i] * (1.0f / 32768.0f);
    feat_alloc(&f, e, n);
    c.f = &f;
    if (avs_feat_compute(e, e->policy, wave, n, 0, clip_frame, clip_record, &c, err)) {
        avs_err_wrap(err, "%s", path);
        goto out;
    }
    f.rgb = c.rgb, c.rgb = NULL;
    f.duration = res.duration, f.fps = res.fps, f.has_audio = res.has_audio;
    *out = f;
    memset(&f, 0, sizeof f);
    rc = 0;
out:
    avs_clip_feat_free(&f);
    avs_decode_result_free(&res);
    free(c.rgb);
    free(wave);
    return rc;
}

void avs_clip_feat_free(struct avs_clip_feat *f)
{
    if (!f)
        return;
    free(f->rgb), free(f->audio_emb), free(f->target), free(f->target_v);
    for (int s = 0; s < 4; s++)
        free(f->stage[s]), free(f->gradcam[s]), free(f->gradcam_v[s]);
    memset(f, 0, sizeof *f);
}
