/* synth/plan.c: deterministic clip plans (what is shown where, what is heard when) and the
 * soundtracks they imply.
 *
 * Every random choice comes from splitmix64 streams seeded from (seed, subset, clip index),
 * so a clip's plan does not depend on the number of clips after it or on -j.
 *   S4:  one object (categories dealt round-robin after a seeded shuffle) heard all along.
 *   MS3: two or three objects of different categories in lanes left..right; the clip is cut
 *        into runs of 1-3 seconds, each heard from one object (sometimes two), changing at
 *        every run, so some visible objects are silent for seconds (or the whole clip).
 * Splits: a seeded shuffle of the clip indices; 70% train, 15% val, the rest test (at least
 * one val and one test clip when there are three or more), as AVSBench's proportions.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/synth.h"

struct rng { uint64_t s; };

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct rng rng_make(uint64_t a, uint64_t b, uint64_t c)
{
    struct rng r = {a * 0x2545f4914f6cdd1dull ^ (b << 32) ^ c};
    rng_next(&r);
    r.s ^= rng_next(&r);
    return r;
}

static double rng_unit(struct rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }
static float rng_range(struct rng *r, double a, double b) { return (float)(a + (b - a) * rng_unit(r)); }
static int rng_int(struct rng *r, int n) { return (int)(rng_unit(r) * n); }

static double rng_gauss(struct rng *r)
{
    double u = rng_unit(r), v = rng_unit(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static void shuffle(int *v, int n, struct rng *r)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rng_int(r, i + 1), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

const char *avs_synth_split_name(int split)
{
    return split == AVS_SYNTH_TRAIN ? "train" : split == AVS_SYNTH_VAL ? "val" : "test";
}

void avs_synth_opts_default(struct avs_synth_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->subset = AVS_SYNTH_S4;
    o->videos = 10;
    o->seconds = 5;
    o->seed = 1;
    o->width = o->height = 224;
    o->crf = 20;
    o->jobs = 1;
}

/* A YouTube-like 11-character id (first character alphanumeric). */
static void make_uid(char *out, struct rng *r)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 11; i++) out[i] = abc[rng_int(r, i == 0 ? 62 : 64)];
    out[11] = 0;
}

/* Place a layer in horizontal lane `lane` of `lanes`, its height a fraction of the frame. */
static void place_layer(struct avs_synth_layer *L, const struct avs_image *obj,
                        const struct avs_synth_clip *c, int lane, int lanes, struct rng *r)
{
    float W = (float)c->width, H = (float)c->height;
    float aspect = (float)obj->w / obj->h;
    float hmax = lanes == 1 ? 0.62f * H : 0.5f * H;
    float wmax = (lanes == 1 ? 0.8f : 0.95f / lanes) * W;
    float h = rng_range(r, 0.7, 1.0) * fminf(hmax, wmax / aspect);
    float grow = rng_range(r, 0.8, 1.25);
    L->h0 = h;
    L->h1 = fminf(h * grow, fminf(hmax, wmax / aspect) * 1.1f);
    float hm = fmaxf(L->h0, L->h1), wm = hm * aspect;
    float lane_w = W / lanes, lo = lane * lane_w + wm / 2, hi = (lane + 1) * lane_w - wm / 2;
    if (lo > hi) lo = hi = (lane + 0.5f) * lane_w;
    /* Standing on the ground: the bottom edge in the lower part of the frame. */
    float ylo = fmaxf(hm / 2 + 0.03f * H, 0.72f * H - hm / 2), yhi = 0.98f * H - hm / 2;
    if (ylo > yhi) ylo = yhi = H / 2;
    L->x0 = rng_range(r, lo, hi);
    L->x1 = rng_range(r, lo, hi);
    L->y0 = rng_range(r, ylo, yhi);
    L->y1 = rng_range(r, ylo, yhi);
    L->bob_amp = rng_range(r, 0, 0.015 * H);
    L->bob_freq = rng_range(r, 0.3, 1.2);
    L->bob_phase = rng_range(r, 0, 2 * M_PI);
    L->flip = rng_int(r, 2);
    L->pan = (L->x0 / W) * 1.2f - 0.6f;
}

/* MS3 schedule: runs of 1-3 seconds; each run heard from one layer (p = 0.25: two layers),
 * never the same set as the previous run; at least two different sets per clip. */
static void plan_ms3_schedule(struct avs_synth_clip *c, struct rng *r)
{
    int n = c->n_layers;
    unsigned prev = 0;
    for (int k = 0; k < c->seconds;) {
        int len = 1 + rng_int(r, 3);
        unsigned set;
        do {
            set = 1u << rng_int(r, n);
            if (rng_unit(r) < 0.25) set |= 1u << rng_int(r, n);
        } while (set == prev);
        for (int i = 0; i < len && k < c->seconds; i++, k++) c->sounding[k] = (uint8_t)set;
        prev = set;
    }
    if (c->seconds >= 2 && c->sounding[0] == c->sounding[c->seconds - 1]) {
        int same = 1;
        for (int k = 1; k < c->seconds; k++) same &= c->sounding[k] == c->sounding[0];
        if (same) c->sounding[c->seconds - 1] = (uint8_t)(1u << ((rng_int(r, n - 1) + 1 +
                                                   __builtin_ctz(c->sounding[0])) % n));
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* MS3 label: the categories heard anywhere in the clip, sorted, joined by '+'. */
static void ms3_label(struct avs_synth_clip *c, const struct avs_synth_media *m)
{
    unsigned heard = 0;
    for (int k = 0; k < c->seconds; k++) heard |= c->sounding[k];
    const char *names[AVS_SYNTH_MAX_LAYERS];
    int n = 0;
    for (int l = 0; l < c->n_layers; l++)
        if (heard >> l & 1) names[n++] = m->categories[c->layers[l].category].name;
    qsort(names, (size_t)n, sizeof(*names), cmp_str);
    c->label[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(c->label);
        snprintf(c->label + len, sizeof(c->label) - len, "%s%s", i ? "+" : "", names[i]);
    }
}

/* Splits: a seeded shuffle of the clip indices, then 70 / 15 / 15 %. */
static void plan_splits(struct avs_synth_clip *cs, int n, const struct avs_synth_opts *o)
{
    int *order = avs_malloc(sizeof(int) * (size_t)n);
    struct rng rs = rng_make(o->seed, (uint64_t)o->subset, 0x5117);
    for (int i = 0; i < n; i++) order[i] = i;
    shuffle(order, n, &rs);
    int n_val = n >= 3 ? (int)fmax(1, floor(n * 0.15)) : 0, n_test = n >= 3 ? n_val : 0;
    for (int i = 0; i < n; i++)
        cs[order[i]].split = i < n - n_val - n_test ? AVS_SYNTH_TRAIN
                             : i < n - n_test       ? AVS_SYNTH_VAL
                                                    : AVS_SYNTH_TEST;
    free(order);
}

/* MS3: n_layers distinct categories. */
static void pick_categories(int *cats, int n_layers, int nc, struct rng *r)
{
    for (int l = 0; l < n_layers; l++) {
        int again;
        do {
            cats[l] = rng_int(r, nc);
            again = 0;
            for (int j = 0; j < l; j++) again |= cats[j] == cats[l];
        } while (again);
    }
}

/* Clip i: everything but the split. s4_cat is its category when S4. */
static void plan_clip(struct avs_synth_clip *c, int i, int s4_cat,
                      const struct avs_synth_media *m, const struct avs_synth_opts *o)
{
    struct rng r = rng_make(o->seed, (uint64_t)o->subset, 1000 + (uint64_t)i);
    c->index = i;
    c->seed = rng_next(&r);
    make_uid(c->uid, &r);
    c->fps = o->fps > 0 ? o->fps : (rng_int(&r, 2) ? 30 : 25);
    c->seconds = o->seconds;
    int single = o->subset == AVS_SYNTH_S4;
    if (o->subset == AVS_SYNTH_AVSS) {
        c->avss_set = i % 3;
        c->seconds = c->avss_set == AVS_SYNTH_V2 ? 10 : 5;
        single = c->avss_set == AVS_SYNTH_V1S;
    }
    c->width = o->width;
    c->height = o->height;
    c->background = rng_int(&r, m->n_backgrounds);
    c->bg_zoom0 = rng_range(&r, 1.0, 1.25);
    c->bg_zoom1 = rng_range(&r, 1.0, 1.25);
    c->bg_cx0 = rng_range(&r, 0.3, 0.7);
    c->bg_cy0 = rng_range(&r, 0.3, 0.7);
    c->bg_cx1 = rng_range(&r, 0.3, 0.7);
    c->bg_cy1 = rng_range(&r, 0.3, 0.7);
    c->noise = rng_range(&r, 0.002, 0.006);
    int cats[AVS_SYNTH_MAX_LAYERS] = {s4_cat};
    if (single) {
        c->n_layers = 1;
    } else {
        c->n_layers = m->n_categories >= 3 && rng_unit(&r) < 0.5 ? 3 : 2;
        pick_categories(cats, c->n_layers, m->n_categories, &r);
    }
    for (int l = 0; l < c->n_layers; l++) {
        struct avs_synth_layer *L = &c->layers[l];
        const struct avs_synth_category *cat = &m->categories[cats[l]];
        L->category = cats[l];
        L->object = rng_int(&r, cat->n_objects);
        L->sound = rng_int(&r, cat->n_sounds);
        L->gap_min = rng_range(&r, 0.02, 0.15);
        L->gap_max = L->gap_min + rng_range(&r, 0.05, 0.25);
        L->seed = rng_next(&r);
        place_layer(L, &cat->objects[L->object], c, l, c->n_layers, &r);
    }
    if (single) {
        memset(c->sounding, 1, (size_t)c->seconds);
        snprintf(c->label, sizeof(c->label), "%s", m->categories[cats[0]].name);
    } else {
        plan_ms3_schedule(c, &r);
        ms3_label(c, m);
    }
}

int avs_synth_plan(const struct avs_synth_media *m, const struct avs_synth_opts *o,
                   struct avs_synth_clip **clips, struct avs_err *err)
{
    if (o->videos < 1) return avs_err_set(err, "--videos must be at least 1");
    if (o->seconds < 1 || o->seconds > AVS_SYNTH_MAX_SECONDS)
        return avs_err_set(err, "--seconds must be 1..%d", AVS_SYNTH_MAX_SECONDS);
    if (o->width < 16 || o->height < 16 || o->width % 2 || o->height % 2)
        return avs_err_set(err, "--size %dx%d: need even sizes of at least 16", o->width, o->height);
    if (o->subset != AVS_SYNTH_S4 && m->n_categories < 2)
        return avs_err_set(err, "%s: %s needs at least two categories, found %d", m->dir,
                           o->subset == AVS_SYNTH_MS3 ? "MS3" : "AVSS", m->n_categories);
    if (o->subset == AVS_SYNTH_AVSS && m->n_categories + 1 > 255)
        return avs_err_set(err, "%s: %d categories: AVSS class masks hold at most 254 besides the "
                           "background", m->dir, m->n_categories);
    int n = o->videos, nc = m->n_categories;
    struct avs_synth_clip *cs = avs_calloc((size_t)n, sizeof(*cs));
    plan_splits(cs, n, o);
    /* S4 categories: round-robin over a seeded shuffle. */
    int *order = avs_malloc(sizeof(int) * (size_t)nc);
    struct rng rc = rng_make(o->seed, (uint64_t)o->subset, 0xca7);
    for (int i = 0; i < nc; i++) order[i] = i;
    shuffle(order, nc, &rc);
    for (int i = 0; i < n; i++) plan_clip(&cs[i], i, order[i % nc], m, o);
    free(order);
    *clips = cs;
    return 0;
}

/* One layer's recording repeated over the clip with random gaps, then gated by the seconds in
 * which it is heard (10 ms ramps inside the heard seconds, so nothing leaks into the others). */
static void layer_track(const struct avs_synth_media *m, const struct avs_synth_clip *c, int l,
                        float *out, int64_t n)
{
    const struct avs_synth_layer *L = &c->layers[l];
    const struct avs_synth_sound *s = &m->categories[L->category].sounds[L->sound];
    struct rng r = {L->seed};
    memset(out, 0, sizeof(float) * (size_t)n);
    /* Each run of heard seconds starts the recording afresh at its first sample. */
    for (int k = 0; k < c->seconds; k++) {
        if (!(c->sounding[k] >> l & 1) || (k > 0 && (c->sounding[k - 1] >> l & 1))) continue;
        int k_end = k;
        while (k_end < c->seconds && (c->sounding[k_end] >> l & 1)) k_end++;
        int64_t pos = (int64_t)k * AVS_SYNTH_RATE, end = (int64_t)k_end * AVS_SYNTH_RATE;
        if (end > n) end = n;
        while (pos < end) {
            for (int64_t i = 0; i < s->n && pos + i < end; i++) out[pos + i] = s->pcm[i];
            pos += s->n + (int64_t)(rng_range(&r, L->gap_min, L->gap_max) * AVS_SYNTH_RATE);
        }
        int64_t ramp = AVS_SYNTH_RATE / 100;
        for (int64_t i = 0; i < ramp; i++) {
            float g = (float)i / (float)ramp;
            int64_t a = (int64_t)k * AVS_SYNTH_RATE + i, b = end - 1 - i;
            if (a < n) out[a] *= g;
            if (b >= 0) out[b] *= g;
        }
    }
}

void avs_synth_render_audio(const struct avs_synth_media *m, const struct avs_synth_clip *c,
                            int layer, float **pcm, int64_t *n)
{
    int64_t len = (int64_t)c->seconds * AVS_SYNTH_RATE;
    float *track = avs_malloc(sizeof(float) * (size_t)len);
    if (layer >= 0) {
        layer_track(m, c, layer, track, len);
        *pcm = track;
        *n = len;
        return;
    }
    float *mix = avs_calloc((size_t)len * 2, sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        layer_track(m, c, l, track, len);
        float th = (float)(M_PI / 4) * (1 + c->layers[l].pan);
        float gl = cosf(th) * (float)M_SQRT2 * 0.7f, gr = sinf(th) * (float)M_SQRT2 * 0.7f;
        for (int64_t i = 0; i < len; i++) {
            mix[2 * i] += gl * track[i];
            mix[2 * i + 1] += gr * track[i];
        }
    }
    struct rng r = {c->seed ^ 0xa0d10ull};
    for (int64_t i = 0; i < len * 2; i++) {
        float v = mix[i] + c->noise * (float)rng_gauss(&r);
        mix[i] = v < -1 ? -1 : v > 1 ? 1 : v;
    }
    free(track);
    *pcm = mix;
    *n = len;
}
