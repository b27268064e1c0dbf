/* features/cache.c: the feature cache file (cache.h). */
#define _FILE_OFFSET_BITS 64
#include "features/cache.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/f16.h"
#include "core/fs.h"
#include "core/integrity.h"

#define HEADER_BYTES 64
#define FIELD_BYTES 64
#define SUM_BYTES 8   /* a record's trailing checksum */
#define HSUM_AT 40    /* the header checksum's place */
static const char MAGIC[8] = {'A', 'V', 'S', 'F', 'E', 'A', 'T', 0};

struct avs_cache_writer {
    char *path;
    int fd;
    enum avs_cache_dtype dtype;
    int n_fields;
    struct avs_cache_field field[AVS_CACHE_MAXFIELDS];
    uint64_t record_bytes, data_offset;
    int64_t n_records;
    uint8_t *buf; /* [record_bytes] */
};

/* ---- header ---- */

size_t avs_cache_field_numel(const struct avs_cache_field *f)
{
    size_t n = 1;
    for (int d = 0; d < f->ndim; d++)
        n *= (size_t)f->shape[d];
    return n;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int check_fields(const struct avs_cache_field *f, int n, struct avs_err *err)
{
    if (n < 1 || n > AVS_CACHE_MAXFIELDS)
        return avs_err_set(err, "feature cache: %d fields (1..%d)", n, AVS_CACHE_MAXFIELDS);
    for (int i = 0; i < n; i++) {
        if (f[i].ndim < 1 || f[i].ndim > 4 || !memchr(f[i].name, 0, sizeof f[i].name))
            return avs_err_set(err, "feature cache: field %d has %d dims or an unterminated name", i,
                               f[i].ndim);
        uint64_t numel = 1; /* <= 2^32 per field, so a record's size cannot wrap */
        for (int d = 0; d < f[i].ndim; d++) {
            if (f[i].shape[d] < 1 || f[i].shape[d] > (1 << 24))
                return avs_err_set(err, "feature cache: field %s has dim %d = %d", f[i].name, d,
                                   f[i].shape[d]);
            if ((numel *= (uint64_t)f[i].shape[d]) > ((uint64_t)1 << 32))
                return avs_err_set(err, "feature cache: field %s has over 2^32 elements", f[i].name);
        }
    }
    return 0;
}

/* A record's bytes: the fields, then the checksum. */
static uint64_t layout(const struct avs_cache_field *f, int n, enum avs_cache_dtype dt, size_t *off)
{
    uint64_t b = 0;
    for (int i = 0; i < n; i++) {
        if (off)
            off[i] = b;
        b += avs_cache_field_numel(&f[i]) * (dt == AVS_CACHE_F16 ? 2 : 4);
    }
    return b + SUM_BYTES;
}

/* The set's name from its file "features/<set>.bin", for the rebuild command in messages. */
static char *set_name(const char *path)
{
    const char *b = strrchr(path, '/');
    char *s = avs_strdup(b ? b + 1 : path);
    size_t n = strlen(s);
    if (n > 4 && !strcmp(s + n - 4, ".bin"))
        s[n - 4] = 0;
    return s;
}

static int damaged(const char *path, struct avs_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "<path>: <what>: run avs-features --rebuild --set <set> ..." */
static int damaged(const char *path, struct avs_err *err, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char *set = set_name(path);
    avs_err_set(err, "%s: %s: the cache is damaged; recompute it with avs-features --rebuild "
                "--set %s (and the options that made it: avs-features show --set %s)", path, what,
                set, set);
    free(set);
    return -1;
}

static void encode_header(uint8_t *h, const struct avs_cache_field *f, int n,
                          enum avs_cache_dtype dt)
{
    memset(h, 0, HEADER_BYTES + (size_t)n * FIELD_BYTES);
    memcpy(h, MAGIC, 8);
    put32(h + 8, AVS_CACHE_VERSION);
    put32(h + 12, (uint32_t)dt);
    put32(h + 16, (uint32_t)n);
    put64(h + 24, layout(f, n, dt, NULL));
    put64(h + 32, HEADER_BYTES + (uint64_t)n * FIELD_BYTES);
    for (int i = 0; i < n; i++) {
        uint8_t *p = h + HEADER_BYTES + (size_t)i * FIELD_BYTES;
        memcpy(p, f[i].name, strlen(f[i].name));
        put32(p + 40, (uint32_t)f[i].ndim);
        for (int d = 0; d < 4; d++)
            put32(p + 44 + 4 * d, d < f[i].ndim ? (uint32_t)f[i].shape[d] : 0);
    }
    put64(h + HSUM_AT, avs_xxh3(h, HEADER_BYTES + (size_t)n * FIELD_BYTES, 0));
}

/* The header's checksum over hb bytes, with its own place counted as zero. */
static uint64_t header_sum(const uint8_t *h, size_t hb)
{
    uint8_t *tmp = avs_malloc(hb);
    memcpy(tmp, h, hb);
    put64(tmp + HSUM_AT, 0);
    uint64_t s = avs_xxh3(tmp, hb, 0);
    free(tmp);
    return s;
}

/* Parse and check a header of len bytes; fills c's layout. */
static int decode_header(struct avs_cache *c, const uint8_t *h, size_t len, const char *path,
                         struct avs_err *err)
{
    if (len < HEADER_BYTES || memcmp(h, MAGIC, 8))
        return avs_err_set(err, "%s: not a feature cache (bad magic): run avs-features --rebuild "
                           "--set NAME (the file's name)", path);
    uint32_t ver = get32(h + 8), dt = get32(h + 12), n = get32(h + 16);
    if (ver != AVS_CACHE_VERSION)
        return avs_err_set(err, "%s: feature cache v%u, need v%d: run avs-features --rebuild "
                           "--set NAME (the file's name; with the options that made it)", path, ver,
                           AVS_CACHE_VERSION);
    if (dt > 1 || n < 1 || n > AVS_CACHE_MAXFIELDS || len < HEADER_BYTES + (size_t)n * FIELD_BYTES)
        return damaged(path, err, "bad header (dtype %u, %u fields)", dt, n);
    if (get64(h + HSUM_AT) != header_sum(h, HEADER_BYTES + (size_t)n * FIELD_BYTES))
        return damaged(path, err, "header checksum mismatch");
    c->dtype = (enum avs_cache_dtype)dt;
    c->n_fields = (int)n;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = h + HEADER_BYTES + (size_t)i * FIELD_BYTES;
        struct avs_cache_field *f = &c->field[i];
        memset(f, 0, sizeof *f);
        memcpy(f->name, p, 39);
        f->ndim = (int)get32(p + 40);
        for (int d = 0; d < 4; d++)
            f->shape[d] = (int)get32(p + 44 + 4 * d);
    }
    if (check_fields(c->field, c->n_fields, err))
        return avs_err_wrap(err, "%s", path);
    c->record_bytes = layout(c->field, c->n_fields, c->dtype, c->field_off);
    c->data_offset = HEADER_BYTES + (uint64_t)n * FIELD_BYTES;
    if (get64(h + 24) != c->record_bytes || get64(h + 32) != c->data_offset)
        return damaged(path, err, "header's record size disagrees with its field table");
    return 0;
}

/* ---- writer ---- */

/* Header temp files "<path>.tmp.<pid>" of writers killed before their rename. Callers hold
 * the set's lock, so no live writer owns one. */
static void sweep_header_tmps(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = avs_strdup(slash ? path : ".");
    if (slash)
        dir[slash - path] = 0;
    char *prefix = avs_sprintf("%s.tmp.", slash ? slash + 1 : path);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            char *p = avs_sprintf("%s/%s", dir, e->d_name);
            unlink(p);
            free(p);
        }
    if (d)
        closedir(d);
    free(dir), free(prefix);
}

static int create_file(const char *path, const struct avs_cache_field *f, int n,
                       enum avs_cache_dtype dt, struct avs_err *err)
{
    size_t hb = HEADER_BYTES + (size_t)n * FIELD_BYTES;
    uint8_t *h = avs_malloc(hb);
    encode_header(h, f, n, dt);
    sweep_header_tmps(path);
    char *tmp = avs_sprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644), rc = -1;
    ssize_t put = fd < 0 ? -1 : write(fd, h, hb);
    int bad = fd < 0 || put != (ssize_t)hb || fsync(fd) != 0, e = errno;
    if (put >= 0 && put != (ssize_t)hb)
        e = ENOSPC; /* a short write: the file system is full */
    if (fd >= 0 && close(fd) != 0 && !bad)
        bad = 1, e = errno;
    if (bad) {
        avs_fs_write_error(err, tmp, e);
        avs_err_wrap(err, "writing the feature cache header");
        unlink(tmp);
    } else if (rename(tmp, path)) {
        avs_err_set(err, "%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp);
    } else
        rc = 0;
    free(tmp);
    free(h);
    return rc;
}

int avs_cache_open_append(struct avs_cache_writer **out, const char *path,
                          const struct avs_cache_field *fields, int n, enum avs_cache_dtype dtype,
                          struct avs_err *err)
{
    if (check_fields(fields, n, err))
        return avs_err_wrap(err, "%s", path);
    struct stat sb;
    if (stat(path, &sb) && create_file(path, fields, n, dtype, err))
        return -1;
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return avs_err_set(err, "%s: cannot open the feature cache: %s", path, strerror(errno));
    struct avs_cache c;
    memset(&c, 0, sizeof c);
    size_t hb = HEADER_BYTES + (size_t)AVS_CACHE_MAXFIELDS * FIELD_BYTES;
    uint8_t *h = avs_calloc(1, hb);
    ssize_t got = pread(fd, h, hb, 0);
    int rc = decode_header(&c, h, got > 0 ? (size_t)got : 0, path, err);
    free(h);
    if (!rc && (c.dtype != dtype || c.n_fields != n))
        rc = avs_err_set(err, "%s: the cache holds %d %s fields, this run writes %d %s fields: use "
                         "another feature set name or delete the file", path, c.n_fields,
                         c.dtype ? "fp16" : "fp32", n, dtype ? "fp16" : "fp32");
    for (int i = 0; !rc && i < n; i++)
        if (strcmp(c.field[i].name, fields[i].name) || c.field[i].ndim != fields[i].ndim ||
            memcmp(c.field[i].shape, fields[i].shape, (size_t)fields[i].ndim * sizeof(int)))
            rc = avs_err_set(err, "%s: field %d is %s in the cache, %s in this run: use another "
                             "feature set name or delete the file", path, i, c.field[i].name,
                             fields[i].name);
    if (rc || fstat(fd, &sb)) {
        if (!rc)
            avs_err_set(err, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int64_t nrec = ((uint64_t)sb.st_size - c.data_offset) / c.record_bytes;
    off_t keep = (off_t)(c.data_offset + (uint64_t)nrec * c.record_bytes);
    if (sb.st_size != keep && ftruncate(fd, keep)) { /* drop a record cut by a crash */
        avs_err_set(err, "%s: cannot drop a partial record: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    struct avs_cache_writer *w = avs_calloc(1, sizeof *w);
    w->path = avs_strdup(path);
    w->fd = fd;
    w->dtype = dtype;
    w->n_fields = n;
    memcpy(w->field, fields, (size_t)n * sizeof *fields);
    w->record_bytes = c.record_bytes;
    w->data_offset = c.data_offset;
    w->n_records = nrec;
    w->buf = avs_malloc(c.record_bytes);
    *out = w;
    return 0;
}

/* The fields of one record into w->buf as stored (fp32 or fp16), then its checksum for the
 * record's place off. A NaN/Inf as stored (fp16: also a finite value beyond its range) is
 * refused: it would poison every run that reads the record. */
static int encode_record(struct avs_cache_writer *w, const float *const *data, uint64_t off,
                         struct avs_err *err)
{
    uint8_t *p = w->buf;
    int f16 = w->dtype == AVS_CACHE_F16;
    for (int i = 0; i < w->n_fields; i++) {
        size_t n = avs_cache_field_numel(&w->field[i]);
        if (!f16)
            memcpy(p, data[i], n * 4);
        else
            for (size_t k = 0; k < n; k++) {
                uint16_t h = avs_f32_to_f16(data[i][k]);
                p[2 * k] = (uint8_t)h, p[2 * k + 1] = (uint8_t)(h >> 8);
            }
        int64_t bad = avs_nonfinite(p, n, f16 ? AVS_FLOAT_F16 : AVS_FLOAT_F32);
        if (bad >= 0)
            return avs_err_set(err, "%s: tensor %s of the record to write has %s at element %lld "
                               "(%g): not written (an encoder that diverged, or damaged weights?)",
                               w->path, w->field[i].name, f16 ? "a NaN/Inf in fp16" : "a NaN/Inf",
                               (long long)bad, (double)data[i][bad]);
        p += n * (f16 ? 2 : 4);
    }
    put64(p, avs_xxh3(w->buf, (size_t)(w->record_bytes - SUM_BYTES), off));
    return 0;
}

int avs_cache_append(struct avs_cache_writer *w, const float *const *data, int64_t *offset,
                     struct avs_err *err)
{
    uint64_t off = w->data_offset + (uint64_t)w->n_records * w->record_bytes;
    if (encode_record(w, data, off, err))
        return -1;
    size_t done = 0;
    while (done < w->record_bytes) {
        ssize_t r = pwrite(w->fd, w->buf + done, w->record_bytes - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            /* no partial record stays behind (a later open would drop it too) */
            if (ftruncate(w->fd, (off_t)off) != 0)
                avs_log_warn("%s: cannot drop the partial record at %llu: %s", w->path,
                             (unsigned long long)off, strerror(errno));
            return avs_fs_write_error(err, w->path, e);
        }
        done += (size_t)r;
    }
    w->n_records++;
    if (offset)
        *offset = (int64_t)off;
    return 0;
}

int avs_cache_sync(struct avs_cache_writer *w, struct avs_err *err)
{
    return fsync(w->fd) ? avs_fs_write_error(err, w->path, errno) : 0;
}

int avs_cache_keep_through(struct avs_cache_writer *w, int64_t last_offset, struct avs_err *err)
{
    int64_t keep = last_offset < 0 ? 0
                 : (last_offset - (int64_t)w->data_offset) / (int64_t)w->record_bytes + 1;
    if (keep < 0 || keep >= w->n_records)
        return 0;
    off_t end = (off_t)(w->data_offset + (uint64_t)keep * w->record_bytes);
    if (ftruncate(w->fd, end) != 0)
        return avs_err_set(err, "%s: cannot drop %lld records that no index row names: %s", w->path,
                           (long long)(w->n_records - keep), strerror(errno));
    w->n_records = keep;
    return 0;
}

int64_t avs_cache_writer_records(const struct avs_cache_writer *w)
{
    return w->n_records;
}

void avs_cache_close_writer(struct avs_cache_writer **pw)
{
    struct avs_cache_writer *w = *pw;
    if (!w)
        return;
    close(w->fd);
    free(w->path);
    free(w->buf);
    free(w);
    *pw = NULL;
}

/* ---- reader ---- */

int avs_cache_open(struct avs_cache **out, const char *path, struct avs_err *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return avs_err_set(err, "%s: cannot open the feature cache: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || sb.st_size < HEADER_BYTES) {
        close(fd);
        return avs_err_set(err, "%s: not a feature cache (too short): run avs-features --rebuild "
                           "--set NAME (the file's name)", path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return avs_err_set(err, "%s: mmap: %s", path, strerror(errno));
    struct avs_cache *c = avs_calloc(1, sizeof *c);
    c->path = avs_strdup(path);
    c->map = map;
    c->len = (size_t)sb.st_size;
    if (decode_header(c, c->map, c->len, path, err)) {
        avs_cache_close(&c);
        return -1;
    }
    c->n_records = (int64_t)((c->len - c->data_offset) / c->record_bytes);
    c->verified = avs_calloc((size_t)c->n_records + 1, 1);
    *out = c;
    return 0;
}

int avs_cache_find(const struct avs_cache *c, const char *name)
{
    for (int i = 0; i < c->n_fields; i++)
        if (!strcmp(c->field[i].name, name))
            return i;
    return -1;
}

/* Record number of a byte offset, or -1 when no record starts there. */
static int64_t record_at(const struct avs_cache *c, int64_t offset)
{
    if (offset < (int64_t)c->data_offset || ((uint64_t)offset - c->data_offset) % c->record_bytes ||
        (uint64_t)offset + c->record_bytes > c->len)
        return -1;
    return (int64_t)(((uint64_t)offset - c->data_offset) / c->record_bytes);
}

/* Checksum, then each field's NaN/Inf scan, of record r at offset. */
static int check_record(const struct avs_cache *c, int64_t r, int64_t offset, struct avs_err *err)
{
    const uint8_t *p = c->map + offset;
    size_t nb = (size_t)(c->record_bytes - SUM_BYTES);
    if (get64(p + nb) != avs_xxh3(p, nb, (uint64_t)offset))
        return damaged(c->path, err, "record %lld (byte offset %lld) fails its checksum",
                       (long long)r, (long long)offset);
    int f16 = c->dtype == AVS_CACHE_F16;
    for (int f = 0; f < c->n_fields; f++) {
        int64_t bad = avs_nonfinite(p + c->field_off[f], avs_cache_field_numel(&c->field[f]),
                                    f16 ? AVS_FLOAT_F16 : AVS_FLOAT_F32);
        if (bad >= 0)
            return damaged(c->path, err, "record %lld (byte offset %lld): tensor %s has a NaN/Inf "
                           "at element %lld", (long long)r, (long long)offset, c->field[f].name,
                           (long long)bad);
    }
    return 0;
}

int avs_cache_verify(const struct avs_cache *c, int64_t offset, struct avs_err *err)
{
    int64_t r = record_at(c, offset);
    if (r < 0)
        return avs_err_set(err, "%s: no record at byte offset %lld: the index and the cache "
                           "disagree; run avs-features --rebuild --set NAME", c->path,
                           (long long)offset);
    if (__atomic_load_n(&c->verified[r], __ATOMIC_ACQUIRE))
        return 0;
    if (check_record(c, r, offset, err))
        return -1;
    __atomic_store_n(&c->verified[r], 1, __ATOMIC_RELEASE);
    return 0;
}

int avs_cache_read(const struct avs_cache *c, int64_t offset, int f, float *dst, struct avs_err *err)
{
    if (f < 0 || f >= c->n_fields)
        return avs_err_set(err, "%s: no field %d", c->path, f);
    if (avs_cache_verify(c, offset, err))
        return -1;
    const uint8_t *p = c->map + offset + c->field_off[f];
    size_t n = avs_cache_field_numel(&c->field[f]);
    if (c->dtype == AVS_CACHE_F32)
        memcpy(dst, p, n * 4);
    else
        for (size_t k = 0; k < n; k++)
            dst[k] = avs_f16_to_f32((uint16_t)(p[2 * k] | p[2 * k + 1] << 8));
    return 0;
}

void avs_cache_close(struct avs_cache **pc)
{
    struct avs_cache *c = *pc;
    if (!c)
        return;
    if (c->map)
        munmap((void *)c->map, c->len);
    free(c->verified);
    free(c->path);
    free(c);
    *pc = NULL;
}

int avs_cache_cover(struct avs_cache **c, int64_t end, struct avs_err *err)
{
    if (end <= (int64_t)(*c)->len)
        return 0;
    struct avs_cache *fresh;
    if (avs_cache_open(&fresh, (*c)->path, err))
        return -1;
    avs_cache_close(c);
    *c = fresh;
    return 0;
}
