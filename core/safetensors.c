/* core/safetensors.c: see safetensors.h. Every size read from the file is overflow-checked and
 * every tensor must lie inside the data buffer with exactly numel * dtype-size bytes. */
#include "core/safetensors.h"

#include <cjson/cJSON.h>
#include <xxhash.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/f16.h"
#include "core/fs.h"
#include "core/integrity.h"
#include "core/pth.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [AVS_ST_F32] = {"F32", 4}, [AVS_ST_F16] = {"F16", 2}, [AVS_ST_BF16] = {"BF16", 2},
    [AVS_ST_F64] = {"F64", 8}, [AVS_ST_I64] = {"I64", 8}, [AVS_ST_I32] = {"I32", 4},
    [AVS_ST_U8] = {"U8", 1},   [AVS_ST_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *avs_st_dtype_name(enum avs_st_dtype d)
{
    return dtypes[d].name;
}

size_t avs_st_dtype_size(enum avs_st_dtype d)
{
    return dtypes[d].size;
}

static int dtype_parse(const char *s, enum avs_st_dtype *d)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(s, dtypes[i].name)) {
            *d = (enum avs_st_dtype)i;
            return 0;
        }
    return -1;
}

/* The 64-bit integer in a JSON number, if it is one exactly. */
static int json_u64(const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > 9007199254740992.0 ||
        j->valuedouble != floor(j->valuedouble))
        return -1;
    *v = (uint64_t)j->valuedouble;
    return 0;
}

static int parse_entry(const cJSON *e, struct avs_st_tensor *t, size_t data_len, const char *path,
                       struct avs_err *err)
{
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
        cJSON_GetArraySize(off) != 2)
        return avs_err_set(err, "%s: tensor \"%s\": header entry needs dtype, shape and "
                           "data_offsets [begin,end]; the file is not valid safetensors",
                           path, t->name);
    if (dtype_parse(dt->valuestring, &t->dtype))
        return avs_err_set(err, "%s: tensor \"%s\": unsupported dtype %s", path, t->name,
                           dt->valuestring);
    t->ndim = cJSON_GetArraySize(sh);
    if (t->ndim > AVS_ST_MAXDIM)
        return avs_err_set(err, "%s: tensor \"%s\": %d dims, at most %d supported", path,
                           t->name, t->ndim, AVS_ST_MAXDIM);
    size_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (json_u64(cJSON_GetArrayItem(sh, i), &d) || d > INT32_MAX ||
            avs_size_mul(numel, (size_t)d, &numel))
            return avs_err_set(err, "%s: tensor \"%s\": bad or overflowing shape", path,
                               t->name);
        t->shape[i] = (int64_t)d;
    }
    uint64_t b, en;
    size_t nbytes;
    if (json_u64(cJSON_GetArrayItem(off, 0), &b) || json_u64(cJSON_GetArrayItem(off, 1), &en) ||
        b > en || avs_size_mul(numel, dtypes[t->dtype].size, &nbytes))
        return avs_err_set(err, "%s: tensor \"%s\": bad data_offsets", path, t->name);
    if (en > data_len)
        return avs_err_set(err, "%s: tensor \"%s\": data [%llu,%llu) runs past the end of the "
                           "file's %zu data bytes: the file is truncated; re-export or re-copy it",
                           path, t->name, (unsigned long long)b, (unsigned long long)en, data_len);
    if (en - b != nbytes)
        return avs_err_set(err, "%s: tensor \"%s\": %llu data bytes for a shape of %zu %s "
                           "elements (%zu bytes)", path, t->name, (unsigned long long)(en - b),
                           numel, dtypes[t->dtype].name, nbytes);
    t->numel = numel;
    t->nbytes = nbytes;
    t->data = (const void *)(uintptr_t)b; /* relocated by the caller */
    return 0;
}

/* String entries of "__metadata__" (others are ignored, as the format allows only strings). */
static void read_meta(struct avs_st_file *f, const cJSON *m)
{
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, m) n++;
    f->meta_key = avs_calloc((size_t)n + 1, sizeof *f->meta_key);
    f->meta_val = avs_calloc((size_t)n + 1, sizeof *f->meta_val);
    cJSON_ArrayForEach(e, m) if (cJSON_IsString(e))
    {
        f->meta_key[f->n_meta] = avs_strdup(e->string);
        f->meta_val[f->n_meta++] = avs_strdup(e->valuestring);
    }
}

static int parse_header(struct avs_st_file *f, const char *json, size_t data_len,
                        const unsigned char *data, struct avs_err *err)
{
    int rc = -1;
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        avs_err_set(err, "%s: the JSON header does not parse: not a safetensors file, or corrupt",
                    f->path);
        goto out;
    }
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) if (strcmp(e->string, "__metadata__")) n++;
    f->t = avs_calloc((size_t)(n ? n : 1), sizeof *f->t);
    cJSON_ArrayForEach(e, root)
    {
        if (!strcmp(e->string, "__metadata__")) {
            if (f->meta_key) {
                avs_err_set(err, "%s: \"__metadata__\" appears twice in the header: the file is "
                            "not valid safetensors (re-export it)", f->path);
                goto out;
            }
            read_meta(f, e);
            continue;
        }
        struct avs_st_tensor *t = &f->t[f->n++];
        t->name = avs_strdup(e->string);
        if (!cJSON_IsObject(e)) {
            avs_err_set(err, "%s: tensor \"%s\": header entry is not an object", f->path, t->name);
            goto out;
        }
        if (parse_entry(e, t, data_len, f->path, err))
            goto out;
        t->data = data + (uintptr_t)t->data;
    }
    for (int i = 0; i < f->n; i++)
        for (int j = i + 1; j < f->n; j++)
            if (!strcmp(f->t[i].name, f->t[j].name)) {
                avs_err_set(err, "%s: tensor \"%s\" appears twice", f->path, f->t[i].name);
                goto out;
            }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

int avs_st_open(const char *path, struct avs_st_file **out, struct avs_err *err)
{
    int rc = -1, fd = -1;
    char *json = NULL;
    struct avs_st_file *f = avs_calloc(1, sizeof *f);
    f->path = avs_strdup(path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        avs_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    size_t len = (size_t)st.st_size;
    if (len < 8) {
        avs_err_set(err, "%s: %zu bytes, too short for a safetensors file (truncated?)", path, len);
        goto out;
    }
    f->map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        avs_err_set(err, "%s: mmap failed: %s", path, strerror(errno));
        goto out;
    }
    f->map_len = len;
    const unsigned char *p = f->map;
    if (avs_pth_sniff(p, len) != AVS_PTH_NONE) { /* a PyTorch checkpoint: core/pth.h */
        f->map = NULL, f->map_len = 0;
        rc = avs_pth_load(f, p, len, err);
        munmap((void *)(uintptr_t)p, len);
        goto out;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | p[i];
    if (hlen > len - 8 || hlen > (100u << 20)) {
        avs_err_set(err, "%s: header length %llu does not fit in the file's %zu bytes: truncated, "
                    "or neither a safetensors file nor a PyTorch zip checkpoint", path, (unsigned long long)hlen, len);
        goto out;
    }
    json = avs_malloc((size_t)hlen + 1);
    memcpy(json, p + 8, (size_t)hlen);
    json[hlen] = 0;
    if (parse_header(f, json, len - 8 - (size_t)hlen, p + 8 + hlen, err))
        goto out;
    rc = 0;
out:
    free(json);
    if (fd >= 0)
        close(fd);
    if (rc)
        avs_st_close(&f);
    else
        *out = f;
    return rc;
}

void avs_st_close(struct avs_st_file **pf)
{
    struct avs_st_file *f = *pf;
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->map_len);
    for (int i = 0; i < f->n; i++)
        free(f->t[i].name);
    for (int i = 0; i < f->n_meta; i++)
        free(f->meta_key[i]), free(f->meta_val[i]);
    free(f->meta_key), free(f->meta_val);
    free(f->t);
    free(f->path);
    free(f);
    *pf = NULL;
}

const char *avs_st_meta(const struct avs_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_key[i], key))
            return f->meta_val[i];
    return NULL;
}

const struct avs_st_tensor *avs_st_find(const struct avs_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name))
            return &f->t[i];
    return NULL;
}

int avs_st_read_classes(const struct avs_st_file *f, const char *name, int N, int classes,
                        int **out, struct avs_err *err)
{
    const struct avs_st_tensor *t = avs_st_find(f, name);
    *out = NULL;
    if (!t)
        return 0;
    if (t->ndim != 1 || t->numel != (size_t)N || (t->dtype != AVS_ST_I64 && t->dtype != AVS_ST_I32))
        return avs_err_set(err, "%s: tensor \"%s\" must be [%d] int64/int32 class indices",
                           f->path, name, N);
    int *v = avs_malloc((size_t)(N > 0 ? N : 1) * sizeof(int));
    for (int n = 0; n < N; n++) {
        int64_t x;
        int32_t x32;
        if (t->dtype == AVS_ST_I64)
            memcpy(&x, (const char *)t->data + 8 * n, 8);
        else
            memcpy(&x32, (const char *)t->data + 4 * n, 4), x = x32;
        if (x < 0 || x >= classes) {
            free(v);
            return avs_err_set(err, "%s: %s[%d] = %lld is not a class index (0..%d)", f->path, name,
                               n, (long long)x, classes - 1);
        }
        v[n] = (int)x;
    }
    *out = v;
    return 1;
}

int avs_st_read_f32(const struct avs_st_tensor *t, float *dst, size_t n, struct avs_err *err)
{
    if (n != t->numel)
        return avs_err_set(err, "tensor \"%s\": %zu elements, expected %zu", t->name, t->numel, n);
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case AVS_ST_F32:
        memcpy(dst, p, n * 4);
        return 0;
    case AVS_ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    case AVS_ST_F16:
    case AVS_ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == AVS_ST_F16 ? avs_f16_to_f32(h) : avs_bf16_to_f32(h);
        }
        return 0;
    default:
        return avs_err_set(err, "tensor \"%s\": dtype %s is not a float type", t->name,
                           dtypes[t->dtype].name);
    }
}

struct st_item {
    char *name;
    enum avs_st_dtype dtype;
    int ndim;
    int64_t shape[AVS_ST_MAXDIM];
    const void *data;
    size_t nbytes;
};

struct avs_st_writer {
    struct st_item *items;
    int n, cap;
    cJSON *meta;
};

struct avs_st_writer *avs_st_writer_new(void)
{
    return avs_calloc(1, sizeof(struct avs_st_writer));
}

void avs_st_writer_add(struct avs_st_writer *w, const char *name, enum avs_st_dtype dtype,
                       int ndim, const int64_t *shape, const void *data)
{
    AVS_ASSERT(ndim >= 0 && ndim <= AVS_ST_MAXDIM);
    for (int i = 0; i < w->n; i++)
        AVS_ASSERT(strcmp(w->items[i].name, name) != 0);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->items = avs_realloc(w->items, (size_t)w->cap * sizeof *w->items);
    }
    struct st_item *it = &w->items[w->n++];
    memset(it, 0, sizeof *it);
    it->name = avs_strdup(name);
    it->dtype = dtype;
    it->ndim = ndim;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        it->shape[i] = shape[i];
        numel *= (size_t)shape[i];
    }
    it->data = data;
    it->nbytes = numel * dtypes[dtype].size;
}

void avs_st_writer_add_f32(struct avs_st_writer *w, const char *name, int ndim, const int *shape,
                           const float *data)
{
    int64_t s[AVS_ST_MAXDIM];
    for (int i = 0; i < ndim; i++)
        s[i] = shape[i];
    avs_st_writer_add(w, name, AVS_ST_F32, ndim, s, data);
}

void avs_st_writer_meta(struct avs_st_writer *w, const char *key, const char *value)
{
    if (!w->meta)
        w->meta = cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
    cJSON_AddStringToObject(w->meta, key, value);
}

static char *writer_header(struct avs_st_writer *w, size_t *padded_len)
{
    cJSON *root = cJSON_CreateObject();
    if (w->meta)
        cJSON_AddItemReferenceToObject(root, "__metadata__", w->meta);
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        struct st_item *it = &w->items[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "dtype", dtypes[it->dtype].name);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < it->ndim; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)it->shape[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + it->nbytes)));
        off += it->nbytes;
        cJSON_AddItemToObject(root, it->name, e);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    AVS_ASSERT(s);
    size_t len = strlen(s), padded = (len + 7) & ~(size_t)7;
    char *h = avs_malloc(padded + 1);
    memcpy(h, s, len);
    memset(h + len, ' ', padded - len);
    h[padded] = 0;
    cJSON_free(s);
    *padded_len = padded;
    return h;
}

/* Through a temp file, fsync'd before the rename (checkpoints must survive a crash whole). */
int avs_st_writer_save(struct avs_st_writer *w, const char *path, struct avs_err *err)
{
    size_t hlen;
    char *header = writer_header(w, &hlen);
    struct avs_fs_tmpfile o;
    int rc = -1;
    if (avs_fs_mkdirs_parent(path, err) || avs_fs_tmpfile_open(&o, path, err))
        goto out;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    if (avs_fs_tmpfile_write(&o, le, 8, err) || avs_fs_tmpfile_write(&o, header, hlen, err))
        goto out;
    for (int i = 0; i < w->n; i++)
        if (avs_fs_tmpfile_write(&o, w->items[i].data, w->items[i].nbytes, err))
            goto out;
    rc = avs_fs_tmpfile_commit(&o, 1, err);
out:
    free(header);
    return rc;
}

void avs_st_writer_free(struct avs_st_writer **pw)
{
    struct avs_st_writer *w = *pw;
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->items[i].name);
    free(w->items);
    cJSON_Delete(w->meta);
    free(w);
    *pw = NULL;
}

/* ---- digest ---- */

static void digest_str(XXH3_state_t *x, const char *s)
{
    XXH3_64bits_update(x, s, strlen(s) + 1);
}

static void digest_tensor(XXH3_state_t *x, const char *name, enum avs_st_dtype dt, int ndim,
                          const int64_t *shape, const void *data, size_t nbytes)
{
    uint8_t le[8];
    digest_str(x, name);
    digest_str(x, dtypes[dt].name);
    for (int d = 0; d < ndim; d++) {
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)((uint64_t)shape[d] >> (8 * i));
        XXH3_64bits_update(x, le, 8);
    }
    digest_str(x, "");
    if (nbytes)
        XXH3_64bits_update(x, data, nbytes);
}

uint64_t avs_st_writer_digest(const struct avs_st_writer *w, const char *skip)
{
    XXH3_state_t *x = XXH3_createState();
    AVS_ASSERT(x && XXH3_64bits_reset(x) == XXH_OK);
    const cJSON *e;
    cJSON_ArrayForEach(e, w->meta) if (cJSON_IsString(e) && strcmp(e->string, skip)) {
        digest_str(x, e->string);
        digest_str(x, e->valuestring);
    }
    digest_str(x, "");
    for (int i = 0; i < w->n; i++) {
        const struct st_item *it = &w->items[i];
        digest_tensor(x, it->name, it->dtype, it->ndim, it->shape, it->data, it->nbytes);
    }
    uint64_t h = XXH3_64bits_digest(x);
    XXH3_freeState(x);
    return h;
}

uint64_t avs_st_digest(const struct avs_st_file *f, const char *skip)
{
    XXH3_state_t *x = XXH3_createState();
    AVS_ASSERT(x && XXH3_64bits_reset(x) == XXH_OK);
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_key[i], skip)) {
            digest_str(x, f->meta_key[i]);
            digest_str(x, f->meta_val[i]);
        }
    digest_str(x, "");
    for (int i = 0; i < f->n; i++) {
        const struct avs_st_tensor *t = &f->t[i];
        digest_tensor(x, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes);
    }
    uint64_t h = XXH3_64bits_digest(x);
    XXH3_freeState(x);
    return h;
}

/* ---- NaN/Inf ---- */

/* The first NaN/Inf of a tensor's bytes, -1 if none or not a float type. */
static int64_t tensor_nonfinite(enum avs_st_dtype dt, const void *data, size_t nbytes)
{
    switch (dt) {
    case AVS_ST_F32: return avs_nonfinite(data, nbytes / 4, AVS_FLOAT_F32);
    case AVS_ST_F16: return avs_nonfinite(data, nbytes / 2, AVS_FLOAT_F16);
    case AVS_ST_BF16: return avs_nonfinite(data, nbytes / 2, AVS_FLOAT_BF16);
    case AVS_ST_F64: return avs_nonfinite(data, nbytes / 8, AVS_FLOAT_F64);
    default: return -1;
    }
}

int avs_st_writer_check_finite(const struct avs_st_writer *w, const char *what, struct avs_err *err)
{
    for (int i = 0; i < w->n; i++) {
        const struct st_item *it = &w->items[i];
        int64_t bad = tensor_nonfinite(it->dtype, it->data, it->nbytes);
        if (bad >= 0)
            return avs_err_set(err, "%s: tensor %s has a NaN/Inf at element %lld: not saved", what,
                               it->name, (long long)bad);
    }
    return 0;
}

int avs_st_check_finite(const struct avs_st_file *f, struct avs_err *err)
{
    for (int i = 0; i < f->n; i++) {
        const struct avs_st_tensor *t = &f->t[i];
        int64_t bad = tensor_nonfinite(t->dtype, t->data, t->nbytes);
        if (bad >= 0)
            return avs_err_set(err, "%s: tensor %s has a NaN/Inf at element %lld", f->path, t->name,
                               (long long)bad);
    }
    return 0;
}
