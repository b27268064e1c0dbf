/* core/pth.c: PyTorch zip checkpoints into an avs_st_file (pth.h). ref: torch/serialization.py
 * (_save: data.pkl, data/<key>, byteorder; persistent_id; _legacy_save's MAGIC_NUMBER) and
 * torch/_utils.py (_rebuild_tensor_v2: a strided view of a storage). */
#include "core/pth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zip.h>

#include "core/pickle.h"

#define MAX_PICKLE (256u << 20)
#define MAX_DEPTH 4

static const char *const SD_KEYS[] = {"state_dict", "model", "model_state_dict", "net", "module"};

/* _legacy_save's first pickle: PROTO 2, LONG1 of 10 bytes = MAGIC_NUMBER 0x1950a86a20f9469cfc6c */
static const unsigned char LEGACY_MAGIC[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                             0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

enum avs_pth_kind avs_pth_sniff(const void *data, size_t len)
{
    const unsigned char *p = data;
    if (len >= 4 && p[0] == 'P' && p[1] == 'K' &&
        ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6)))
        return AVS_PTH_ZIP;
    if (len >= sizeof LEGACY_MAGIC && !memcmp(p, LEGACY_MAGIC, sizeof LEGACY_MAGIC))
        return AVS_PTH_LEGACY;
    return AVS_PTH_NONE;
}

/* one tensor of the state dict */
struct item {
    const char *name;
    const struct avs_pk_value *v;
};

struct ctx {
    struct avs_st_file *f;
    zip_t *za;
    char prefix[256]; /* "<name>/" */
    int big_endian;
    size_t file_len;
    struct avs_err *err;
};

/* ---- the archive ---- */

/* The index and uncompressed size of record prefix+rel; compressed bytes past the file's size,
 * or more bytes than they can hold (deflate stays under 1:1032), are corrupt. */
static int record_stat(struct ctx *c, const char *rel, zip_int64_t *index, uint64_t *size)
{
    char name[400];
    snprintf(name, sizeof name, "%s%s", c->prefix, rel);
    zip_int64_t i = zip_name_locate(c->za, name, 0);
    zip_stat_t st;
    if (i < 0 || zip_stat_index(c->za, (zip_uint64_t)i, 0, &st) || !(st.valid & ZIP_STAT_SIZE) ||
        !(st.valid & ZIP_STAT_COMP_SIZE))
        return avs_err_set(c->err, "%s: the record %s is missing: the checkpoint is incomplete "
                           "or not one torch.save wrote; re-save or re-download it", c->f->path, name);
    if (st.comp_size > c->file_len || st.size / 1032 > st.comp_size)
        return avs_err_set(c->err, "%s: the record %s claims %llu bytes from %llu compressed: "
                           "corrupt archive", c->f->path, name, (unsigned long long)st.size,
                           (unsigned long long)st.comp_size);
    *index = i;
    *size = st.size;
    return 0;
}

/* Record prefix+rel into a new buffer of exactly its size (CRC checked at its end). */
static int read_record(struct ctx *c, const char *rel, size_t max, unsigned char **out,
                       size_t *len)
{
    zip_int64_t i;
    uint64_t size;
    if (record_stat(c, rel, &i, &size))
        return -1;
    if (size > max)
        return avs_err_set(c->err, "%s: the record %s%s is %llu bytes, over the %zu this reader "
                           "takes", c->f->path, c->prefix, rel, (unsigned long long)size, max);
    zip_file_t *zf = zip_fopen_index(c->za, (zip_uint64_t)i, 0);
    if (!zf)
        return avs_err_set(c->err, "%s: cannot read the record %s%s: %s (corrupt archive)",
                           c->f->path, c->prefix, rel, zip_strerror(c->za));
    unsigned char *buf = avs_malloc(size ? (size_t)size : 1), extra;
    zip_int64_t got = size ? zip_fread(zf, buf, size) : 0;
    /* reading on to the end makes libzip check the CRC */
    zip_int64_t more = got == (zip_int64_t)size ? zip_fread(zf, &extra, 1) : 0;
    int rc = 0;
    if (got != (zip_int64_t)size || more != 0)
        rc = avs_err_set(c->err, "%s: the record %s%s does not read back whole (%s): the "
                         "checkpoint is truncated or corrupt; re-download or re-save it",
                         c->f->path, c->prefix, rel, got < 0 || more < 0 ? zip_file_strerror(zf) :
                         "its size does not match the directory");
    zip_fclose(zf);
    if (rc) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = (size_t)size;
    return 0;
}

/* The folder that holds data.pkl (torch.save names it after the file or "archive"). */
static int find_prefix(struct ctx *c)
{
    zip_int64_t n = zip_get_num_entries(c->za, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *nm = zip_get_name(c->za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        const char *slash = nm ? strchr(nm, '/') : NULL;
        if (!slash || strcmp(slash, "/data.pkl") || (size_t)(slash - nm) + 2 > sizeof c->prefix)
            continue;
        snprintf(c->prefix, sizeof c->prefix, "%.*s/", (int)(slash - nm), nm);
        char ts[300];
        snprintf(ts, sizeof ts, "%sconstants.pkl", c->prefix);
        if (zip_name_locate(c->za, ts, 0) >= 0)
            return avs_err_set(c->err, "%s: a TorchScript archive (torch.jit.save): its code is not "
                               "read here; save its weights instead: torch.save(torch.jit.load("
                               "'%s').state_dict(), 'weights.pth')", c->f->path, c->f->path);
        return 0;
    }
    return avs_err_set(c->err, "%s: a zip archive without <name>/data.pkl: not a PyTorch checkpoint "
                       "(torch.save); give a .pth/.pt or a .safetensors file", c->f->path);
}

/* <name>/byteorder: "little" or "big"; absent (PyTorch < 2.1): little */
static int read_byteorder(struct ctx *c)
{
    char name[300];
    snprintf(name, sizeof name, "%sbyteorder", c->prefix);
    if (zip_name_locate(c->za, name, 0) < 0)
        return 0;
    unsigned char *b;
    size_t n;
    if (read_record(c, "byteorder", 16, &b, &n))
        return -1;
    int rc = 0;
    if (n == 6 && !memcmp(b, "little", 6))
        c->big_endian = 0;
    else if (n == 3 && !memcmp(b, "big", 3))
        c->big_endian = 1;
    else
        rc = avs_err_set(c->err, "%s: the record %s says neither \"little\" nor \"big\": corrupt "
                         "checkpoint", c->f->path, name);
    free(b);
    return rc;
}

/* ---- the state dict ---- */

static int has_tensor(const struct avs_pk_value *d)
{
    for (int k = 1; k < d->n; k += 2)
        if (d->items[k]->kind == AVS_PK_TENSOR)
            return 1;
    return 0;
}

static int no_state_dict(struct ctx *c, const struct avs_pk_value *d)
{
    char keys[300] = "";
    size_t o = 0;
    for (int k = 0; k + 1 < d->n && o < 200; k += 2)
        if (d->items[k]->kind == AVS_PK_STR)
            o += (size_t)snprintf(keys + o, sizeof keys - o, "%s'%.40s'", o ? ", " : "",
                                  d->items[k]->s);
    return avs_err_set(c->err, "%s: no tensors at the top level nor under 'state_dict', 'model', "
                       "'model_state_dict', 'net' or 'module' (top-level keys: %s; %d in all): "
                       "save the state_dict: torch.save(model.state_dict(), 'weights.pth')",
                       c->f->path, o ? keys : "none", d->n / 2);
}

static const struct avs_pk_value *find_state_dict(struct ctx *c, const struct avs_pk_value *v)
{
    for (int depth = 0; depth < MAX_DEPTH; depth++) {
        if (v->kind != AVS_PK_DICT) {
            avs_err_set(c->err, "%s: the checkpoint holds a %s%s, not a dict of named tensors: "
                        "save a state_dict: torch.save(model.state_dict(), 'weights.pth')",
                        c->f->path, avs_pk_kind_name(v->kind), depth ? " under its state-dict key" : "");
            return NULL;
        }
        if (has_tensor(v))
            return v;
        const struct avs_pk_value *next = NULL;
        for (size_t k = 0; k < sizeof SD_KEYS / sizeof SD_KEYS[0] && !next; k++)
            next = avs_pk_dict_get(v, SD_KEYS[k]);
        if (!next || next->kind != AVS_PK_DICT) {
            no_state_dict(c, v);
            return NULL;
        }
        v = next;
    }
    avs_err_set(c->err, "%s: state dicts nested over %d deep: not a checkpoint layout we know",
                c->f->path, MAX_DEPTH);
    return NULL;
}

/* The tensors of sd (other entries skipped), "module." dropped when every name has it. */
static int collect_items(struct ctx *c, const struct avs_pk_value *sd, struct item **out, int *n)
{
    struct item *it = avs_calloc((size_t)sd->n / 2 + 1, sizeof *it);
    int m = 0, all_module = 1;
    for (int k = 0; k + 1 < sd->n; k += 2) {
        const struct avs_pk_value *key = sd->items[k], *v = sd->items[k + 1];
        if (v->kind != AVS_PK_TENSOR)
            continue;
        if (key->kind != AVS_PK_STR || !key->len || strlen(key->s) != key->len) {
            free(it);
            return avs_err_set(c->err, "%s: a tensor under a key that is not a name (a %s): not "
                               "a state_dict", c->f->path, avs_pk_kind_name(key->kind));
        }
        it[m].name = key->s;
        it[m++].v = v;
        all_module &= !strncmp(key->s, "module.", 7) && key->len > 7;
    }
    for (int k = 0; all_module && k < m; k++)
        it[k].name += 7;
    *out = it;
    *n = m;
    return 0;
}

/* ---- tensors ---- */

/* Shape into t, numel and the view's bounds checked against its storage. */
static int check_view(struct ctx *c, const struct item *it, struct avs_st_tensor *t)
{
    const struct avs_pk_value *v = it->v, *s = v->storage;
    const char *p = c->f->path;
    size_t numel = 1;
    uint64_t last = (uint64_t)v->offset;
    t->dtype = s->dtype;
    t->ndim = v->ndim;
    for (int d = 0; d < v->ndim; d++) {
        if (v->size[d] < 0 || v->size[d] > INT32_MAX || v->stride[d] < 0 ||
            avs_size_mul(numel, (size_t)v->size[d], &numel))
            return avs_err_set(c->err, "%s: tensor \"%s\": bad size or negative stride in dim %d: "
                               "corrupt checkpoint", p, it->name, d);
        t->shape[d] = v->size[d];
    }
    if (v->offset < 0)
        return avs_err_set(c->err, "%s: tensor \"%s\": negative storage offset", p, it->name);
    for (int d = 0; d < v->ndim && numel; d++) {
        uint64_t step;
        if (__builtin_mul_overflow((uint64_t)(v->size[d] - 1), (uint64_t)v->stride[d], &step) ||
            __builtin_add_overflow(last, step, &last))
            last = UINT64_MAX;
    }
    if (numel && last >= (uint64_t)s->i)
        return avs_err_set(c->err, "%s: tensor \"%s\" reaches element %llu of its storage "
                           "data/%s of %lld elements: corrupt checkpoint", p, it->name,
                           (unsigned long long)last, s->s, (long long)s->i);
    if (numel > (uint64_t)s->i)
        return avs_err_set(c->err, "%s: tensor \"%s\" is a view that repeats elements (an expanded "
                           "or as_strided tensor): save t.contiguous() instead", p, it->name);
    t->numel = numel;
    t->nbytes = numel * avs_st_dtype_size(t->dtype);
    char rel[80];
    snprintf(rel, sizeof rel, "data/%s", s->s);
    zip_int64_t idx;
    uint64_t have;
    size_t want;
    if (record_stat(c, rel, &idx, &have))
        return -1;
    if (avs_size_mul((size_t)s->i, avs_st_dtype_size(s->dtype), &want) || want != have)
        return avs_err_set(c->err, "%s: the storage %s%s has %llu bytes, the pickle says %lld "
                           "elements of %zu bytes: the checkpoint is truncated or corrupt", p,
                           c->prefix, rel, (unsigned long long)have, (long long)s->i,
                           avs_st_dtype_size(s->dtype));
    return 0;
}

static int is_contiguous(const struct avs_pk_value *v)
{
    int64_t want = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->size[d] != 1 && v->stride[d] != want)
            return 0;
        want *= v->size[d];
    }
    return 1;
}

/* The view's elements in row-major order into dst (bounds checked by check_view). */
static void gather(unsigned char *dst, const unsigned char *src, const struct avs_pk_value *v,
                   size_t numel, size_t es, int swap)
{
    if (is_contiguous(v)) {
        memcpy(dst, src + (size_t)v->offset * es, numel * es);
    } else {
        int64_t idx[AVS_ST_MAXDIM] = {0};
        for (size_t i = 0; i < numel; i++) {
            size_t pos = (size_t)v->offset;
            for (int d = 0; d < v->ndim; d++)
                pos += (size_t)(idx[d] * v->stride[d]);
            memcpy(dst + i * es, src + pos * es, es);
            for (int d = v->ndim - 1; d >= 0 && ++idx[d] == v->size[d]; d--)
                idx[d] = 0;
        }
    }
    for (size_t i = 0; swap && es > 1 && i < numel; i++)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            unsigned char x = dst[i * es + a];
            dst[i * es + a] = dst[i * es + b];
            dst[i * es + b] = x;
        }
}

/* Every tensor of storage key (items from `first` on): one read of data/<key>. */
static int fill_storage(struct ctx *c, const struct item *it, int n, int first, char *done)
{
    const char *key = it[first].v->storage->s;
    char rel[80];
    snprintf(rel, sizeof rel, "data/%s", key);
    unsigned char *buf;
    size_t len;
    if (read_record(c, rel, SIZE_MAX, &buf, &len))
        return -1;
    int rc = 0;
    for (int k = first; k < n && !rc; k++) {
        const struct avs_pk_value *s = it[k].v->storage;
        if (done[k] || strcmp(s->s, key))
            continue;
        size_t es = avs_st_dtype_size(s->dtype), want;
        if (avs_size_mul((size_t)s->i, es, &want) || want != len) {
            rc = avs_err_set(c->err, "%s: the storage %s%s has %zu bytes, the pickle says %lld "
                             "elements of %zu bytes: the checkpoint is truncated or corrupt",
                             c->f->path, c->prefix, rel, len, (long long)s->i, es);
            break;
        }
        struct avs_st_tensor *t = &c->f->t[k];
        gather((unsigned char *)(uintptr_t)t->data, buf, it[k].v, t->numel, es, c->big_endian);
        done[k] = 1;
    }
    free(buf);
    return rc;
}

/* Names, shapes and places of the tensors in one anonymous mapping, then their data. */
static int build_tensors(struct ctx *c, const struct item *it, int n)
{
    struct avs_st_file *f = c->f;
    f->t = avs_calloc((size_t)n + 1, sizeof *f->t);
    size_t total = 0;
    for (int k = 0; k < n; k++) {
        struct avs_st_tensor *t = &f->t[f->n++];
        t->name = avs_strdup(it[k].name);
        for (int j = 0; j < k; j++)
            if (!strcmp(f->t[j].name, t->name))
                return avs_err_set(c->err, "%s: tensor \"%s\" appears twice", f->path, t->name);
        if (check_view(c, &it[k], t))
            return -1;
        t->data = (const void *)(uintptr_t)total; /* relocated below */
        if (avs_size_add(total, (t->nbytes + 63) & ~(size_t)63, &total))
            return avs_err_set(c->err, "%s: tensor sizes overflow", f->path);
    }
    void *m = mmap(NULL, total ? total : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return avs_err_set(c->err, "%s: cannot allocate %zu bytes for its tensors: %s", f->path,
                           total, strerror(errno));
    f->map = m;
    f->map_len = total ? total : 1;
    for (int k = 0; k < n; k++)
        f->t[k].data = (const unsigned char *)m + (uintptr_t)f->t[k].data;
    char *done = avs_calloc((size_t)n + 1, 1);
    int rc = 0;
    for (int k = 0; k < n && !rc; k++)
        if (!done[k])
            rc = fill_storage(c, it, n, k, done);
    free(done);
    if (!rc)
        mprotect(m, f->map_len, PROT_READ);
    return rc;
}

static int load_pickle(struct ctx *c)
{
    unsigned char *pkl;
    size_t len;
    if (read_record(c, "data.pkl", MAX_PICKLE, &pkl, &len))
        return -1;
    char what[600];
    snprintf(what, sizeof what, "%s (%sdata.pkl)", c->f->path, c->prefix);
    struct avs_pk *pk = NULL;
    struct item *it = NULL;
    int n = 0, rc = avs_pk_load(pkl, len, what, &pk, c->err);
    free(pkl);
    const struct avs_pk_value *sd = rc ? NULL : find_state_dict(c, avs_pk_root(pk));
    rc = !sd || collect_items(c, sd, &it, &n) || build_tensors(c, it, n) ? -1 : 0;
    free(it);
    avs_pk_free(&pk);
    return rc;
}

static int legacy(const char *path, struct avs_err *err)
{
    return avs_err_set(err, "%s: a legacy torch.save file (not a zip: PyTorch < 1.6, or saved with "
                       "_use_new_zipfile_serialization=False), which only Python's pickle reads; "
                       "re-save it once with a current PyTorch: python3 -c \"import torch; "
                       "torch.save(torch.load('%s', map_location='cpu'), 'resaved.pth')\" (or "
                       "convert it with tools/convert_checkpoint.py)", path, path);
}

int avs_pth_load(struct avs_st_file *f, const void *data, size_t len, struct avs_err *err)
{
    if (avs_pth_sniff(data, len) == AVS_PTH_LEGACY)
        return legacy(f->path, err);
    struct ctx c = {.f = f, .file_len = len, .err = err};
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
    if (src && !(c.za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze)))
        zip_source_free(src);
    int rc = -1;
    if (!c.za)
        avs_err_set(err, "%s: not a readable zip archive (%s): the checkpoint is truncated or "
                    "corrupt; re-download or re-save it", f->path, zip_error_strerror(&ze));
    else
        rc = find_prefix(&c) || read_byteorder(&c) || load_pickle(&c) ? -1 : 0;
    if (c.za)
        zip_discard(c.za);
    zip_error_fini(&ze);
    return rc;
}
