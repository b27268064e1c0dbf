/* audiohead/proto.c: the protobuf wire format of exactly the messages AudioSet's embedding
 * release uses (audiohead.h), read without generated code:
 *   SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }
 *   Features { map<string, Feature> feature = 1; }       map entry: key = 1, value = 2
 *   FeatureLists { map<string, FeatureList> feature_list = 1; }
 *   FeatureList { repeated Feature feature = 1; }
 *   Feature { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
 *   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
 *   Int64List { repeated int64 value = 1 [packed]; }
 * Unknown fields are skipped by wire type; packed and unpacked repeated scalars are both read. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audiohead/audiohead.h"

struct buf {
    const uint8_t *p, *end;
};

struct field {
    int num, wt;
    uint64_t v;            /* varint / fixed value */
    struct buf sub;        /* length-delimited payload */
};

static int varint(struct buf *b, uint64_t *v)
{
    *v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (b->p >= b->end)
            return -1;
        uint8_t c = *b->p++;
        *v |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

/* 1 a field, 0 the end, -1 broken */
static int next_field(struct buf *b, struct field *f)
{
    if (b->p == b->end)
        return 0;
    uint64_t key, n;
    if (varint(b, &key) || key >> 3 == 0 || key >> 3 > 0x1fffffff)
        return -1;
    f->num = (int)(key >> 3), f->wt = (int)(key & 7);
    switch (f->wt) {
    case 0:
        return varint(b, &f->v) ? -1 : 1;
    case 1:
    case 5:
        n = f->wt == 1 ? 8 : 4;
        if ((uint64_t)(b->end - b->p) < n)
            return -1;
        f->v = 0;
        for (int i = (int)n - 1; i >= 0; i--)
            f->v = f->v << 8 | b->p[i];
        b->p += n;
        return 1;
    case 2:
        if (varint(b, &n) || n > (uint64_t)(b->end - b->p))
            return -1;
        f->sub.p = b->p, f->sub.end = b->p + n;
        b->p += n;
        return 1;
    default:
        return -1;
    }
}

enum kind { K_NONE, K_BYTES, K_FLOAT, K_INT64 };

/* A Feature: its kind and its list payload. */
static int feature(struct buf b, enum kind *k, struct buf *list)
{
    struct field f;
    int r;
    *k = K_NONE;
    while ((r = next_field(&b, &f)) == 1)
        if (f.wt == 2 && f.num >= 1 && f.num <= 3)
            *k = (enum kind)f.num, *list = f.sub;
    return r;
}

/* The values of a FloatList / Int64List (packed or not) through cb. */
static int scalars(struct buf b, enum kind k, void (*cb)(void *, double, int64_t), void *ctx)
{
    struct field f;
    int r;
    while ((r = next_field(&b, &f)) == 1) {
        if (f.num != 1)
            continue;
        if (k == K_FLOAT && f.wt == 5) {
            float x;
            uint32_t u = (uint32_t)f.v;
            memcpy(&x, &u, 4);
            cb(ctx, x, 0);
        } else if (k == K_INT64 && f.wt == 0) {
            cb(ctx, 0, (int64_t)f.v);
        } else if (f.wt == 2 && k == K_FLOAT) {
            if ((f.sub.end - f.sub.p) % 4)
                return -1;
            for (const uint8_t *q = f.sub.p; q < f.sub.end; q += 4) {
                float x;
                uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                             (uint32_t)q[3] << 24;
                memcpy(&x, &u, 4);
                cb(ctx, x, 0);
            }
        } else if (f.wt == 2 && k == K_INT64) {
            uint64_t v;
            while (f.sub.p < f.sub.end)
                if (varint(&f.sub, &v))
                    return -1;
                else
                    cb(ctx, 0, (int64_t)v);
        } else
            return -1;
    }
    return r;
}

/* A map entry: key string and value payload. */
static int map_entry(struct buf b, struct buf *key, struct buf *val)
{
    struct field f;
    int r;
    key->p = key->end = val->p = val->end = NULL;
    while ((r = next_field(&b, &f)) == 1)
        if (f.wt == 2 && f.num == 1)
            *key = f.sub;
        else if (f.wt == 2 && f.num == 2)
            *val = f.sub;
    return r;
}

static int key_is(struct buf k, const char *s)
{
    size_t n = strlen(s);
    return k.p && (size_t)(k.end - k.p) == n && !memcmp(k.p, s, n);
}

/* the first value of a float list into the double at ctx (NAN: none yet) */
static void take_first(void *ctx, double x, int64_t i)
{
    double *d = ctx;
    (void)i;
    if (isnan(*d))
        *d = x;
}

static void take_label(void *ctx, double x, int64_t i)
{
    struct avs_ah_clip *c = ctx;
    (void)x;
    c->labels = avs_realloc(c->labels, ((size_t)c->n_labels + 1) * sizeof *c->labels);
    c->labels[c->n_labels++] = i;
}

#define FAIL(...) (snprintf(why, whylen, __VA_ARGS__), -1)

static int context_entry(struct buf key, struct buf val, struct avs_ah_clip *c, char *why,
                         size_t whylen)
{
    enum kind k;
    struct buf list = {0};
    if (feature(val, &k, &list) < 0)
        return FAIL("a broken Feature in the context");
    if (key_is(key, "video_id")) {
        struct field f;
        struct buf b = list;
        if (k != K_BYTES || next_field(&b, &f) != 1 || f.wt != 2)
            return FAIL("context video_id is not a bytes list");
        size_t n = (size_t)(f.sub.end - f.sub.p);
        if (n >= sizeof c->id)
            return FAIL("context video_id is %zu bytes long", n);
        memcpy(c->id, f.sub.p, n);
        c->id[n] = 0;
    } else if (key_is(key, "start_time_seconds") || key_is(key, "end_time_seconds")) {
        double v = NAN;
        if (k != K_FLOAT || scalars(list, k, take_first, &v) < 0 || isnan(v))
            return FAIL("context %.*s is not a float list", (int)(key.end - key.p), key.p);
        *(key_is(key, "start_time_seconds") ? &c->start : &c->end) = v;
    } else if (key_is(key, "labels")) {
        if (k != K_INT64 || scalars(list, k, take_label, c) < 0)
            return FAIL("context labels is not an int64 list");
    }
    return 0;
}

/* feature_list "audio_embedding": each Feature one bytes value of 128 bytes. */
static int embeddings(struct buf fl, struct avs_ah_clip *c, char *why, size_t whylen)
{
    struct field f;
    int r;
    while ((r = next_field(&fl, &f)) == 1) {
        if (f.num != 1 || f.wt != 2)
            continue;
        enum kind k;
        struct buf list = {0}, b;
        struct field v;
        if (feature(f.sub, &k, &list) < 0 || k != K_BYTES)
            return FAIL("second %d of audio_embedding is not a bytes list", c->T);
        b = list;
        if (next_field(&b, &v) != 1 || v.wt != 2 || v.sub.end - v.sub.p != AVS_AH_EMB)
            return FAIL("second %d of audio_embedding is not one %d-byte value", c->T, AVS_AH_EMB);
        c->emb = avs_realloc(c->emb, ((size_t)c->T + 1) * AVS_AH_EMB);
        memcpy(c->emb + (size_t)c->T * AVS_AH_EMB, v.sub.p, AVS_AH_EMB);
        c->T++;
    }
    return r < 0 ? FAIL("a broken FeatureList audio_embedding") : 0;
}

/* walk a Features / FeatureLists message: each map entry through one of the two handlers */
static int walk_map(struct buf m, struct avs_ah_clip *c, int lists, char *why, size_t whylen)
{
    struct field f;
    int r;
    while ((r = next_field(&m, &f)) == 1) {
        if (f.num != 1 || f.wt != 2)
            continue;
        struct buf key, val;
        if (map_entry(f.sub, &key, &val) < 0)
            return FAIL("a broken map entry in the %s", lists ? "feature_lists" : "context");
        if (!lists && context_entry(key, val, c, why, whylen))
            return -1;
        if (lists && key_is(key, "audio_embedding") && embeddings(val, c, why, whylen))
            return -1;
    }
    return r < 0 ? FAIL("a broken %s message", lists ? "FeatureLists" : "Features") : 0;
}

int avs_ah_parse_example(const uint8_t *data, size_t len, struct avs_ah_clip *c, char *why,
                         size_t whylen)
{
    memset(c, 0, sizeof *c);
    c->start = c->end = NAN;
    struct buf b = {data, data + len};
    struct field f;
    int r, rc = -1;
    while ((r = next_field(&b, &f)) == 1) {
        if (f.wt != 2 || (f.num != 1 && f.num != 2))
            continue;
        if (walk_map(f.sub, c, f.num == 2, why, whylen))
            goto out;
    }
    if (r < 0) {
        (void)FAIL("not a SequenceExample (broken wire format)");
        goto out;
    }
    if (!c->id[0]) {
        (void)FAIL("no context video_id");
        goto out;
    }
    rc = 0;
out:
    if (rc)
        avs_ah_clip_free(c);
    return rc;
}

void avs_ah_clip_free(struct avs_ah_clip *c)
{
    free(c->labels);
    free(c->emb);
    c->labels = NULL, c->emb = NULL;
    c->n_labels = c->T = 0;
}
