/* tests/test_core_pth.c: PyTorch checkpoints read through avs_st_open (core/pth.h,
 * core/pickle.h) against the files the Debian torch wrote (tests/gen/pth_fixtures.py,
 * tests/fixtures/pth/):
 *   - every accepted NAME.pth gives exactly the tensors of NAME.ref.safetensors: same names
 *     (after 'state_dict'/'model' and 'module.' unwrapping), dtype, shape and bytes (all dtypes,
 *     views with offsets and strides, parameters, protocol 4, a big-endian archive);
 *   - every file of refused.txt is refused with a message naming the file and holding its words
 *     (truncated, bad CRC, foreign class, os.system, whole model, legacy, TorchScript, ...);
 *   - hand-made pickles in hand-made zips (libzip) for what torch does not write: opcodes and
 *     globals outside the allowed set, views outside their storage, storage sizes that do not
 *     match, memo and stack damage, a pickle without STOP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "core/safetensors.h"
#include "tests/check.h"

#define FIX "tests/fixtures/pth"

static void compare(const char *name)
{
    char pth[256], ref[256];
    snprintf(pth, sizeof pth, "%s/%s.pth", FIX, name);
    snprintf(ref, sizeof ref, "%s/%s.ref.safetensors", FIX, name);
    struct avs_st_file *a = NULL, *b = NULL;
    struct avs_err err = {{0}};
    int ra = avs_st_open(pth, &a, &err);
    CHECK(ra == 0, "%s: %s", pth, err.msg);
    int rb = avs_st_open(ref, &b, &err);
    CHECK(rb == 0, "%s: %s (regenerate: /usr/bin/python3 tests/gen/pth_fixtures.py)", ref, err.msg);
    if (ra || rb)
        goto out;
    CHECK(a->n == b->n, "%s: %d tensors, want %d", pth, a->n, b->n);
    int same = 0;
    for (int i = 0; i < b->n; i++) {
        const struct avs_st_tensor *w = &b->t[i], *g = avs_st_find(a, w->name);
        CHECK(g != NULL, "%s: no tensor \"%s\"", pth, w->name);
        if (!g)
            continue;
        int shape_ok = g->ndim == w->ndim && !memcmp(g->shape, w->shape, (size_t)w->ndim * sizeof *w->shape);
        CHECK(g->dtype == w->dtype && shape_ok && g->numel == w->numel,
              "%s: \"%s\": %s ndim %d numel %zu, want %s ndim %d numel %zu", pth, w->name,
              avs_st_dtype_name(g->dtype), g->ndim, g->numel, avs_st_dtype_name(w->dtype), w->ndim,
              w->numel);
        int bytes_ok = g->nbytes == w->nbytes && !memcmp(g->data, w->data, w->nbytes);
        CHECK(bytes_ok, "%s: \"%s\": bytes differ from the reference", pth, w->name);
        same += bytes_ok && shape_ok;
    }
    printf("%-20s %2d tensors bit-identical to %s\n", name, same, ref);
out:
    avs_st_close(&a);
    avs_st_close(&b);
}

static void expect_refused(const char *path, const char *words)
{
    struct avs_st_file *f = NULL;
    struct avs_err err = {{0}};
    int rc = avs_st_open(path, &f, &err);
    CHECK(rc == -1 && f == NULL, "%s: accepted, want a refusal", path);
    CHECK(strstr(err.msg, words) != NULL, "%s: message lacks \"%s\": %s", path, words, err.msg);
    CHECK(strstr(err.msg, path) != NULL, "%s: message does not name the file: %s", path, err.msg);
    printf("refused %-28s %.160s\n", strrchr(path, '/') + 1, err.msg);
    avs_st_close(&f);
}

static void refusals(void)
{
    FILE *l = fopen(FIX "/refused.txt", "r");
    CHECK(l != NULL, "%s/refused.txt missing", FIX);
    char line[512];
    int n = 0;
    while (l && fgets(line, sizeof line, l)) {
        char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');
        if (!tab)
            continue;
        *tab = 0;
        if (nl)
            *nl = 0;
        char path[600];
        snprintf(path, sizeof path, "%s/%.200s", FIX, line);
        expect_refused(path, tab + 1);
        n++;
    }
    if (l)
        fclose(l);
    CHECK(n >= 10, "refused.txt lists %d files", n);
}

/* ---- hand-made checkpoints ---- */

struct buf {
    unsigned char b[4096];
    size_t n;
};

static void put(struct buf *p, const void *s, size_t n)
{
    AVS_ASSERT(p->n + n <= sizeof p->b);
    memcpy(p->b + p->n, s, n);
    p->n += n;
}

static void put_str(struct buf *p, const char *s) /* BINUNICODE */
{
    uint32_t n = (uint32_t)strlen(s);
    unsigned char h[5] = {'X', (unsigned char)n, (unsigned char)(n >> 8), 0, 0};
    put(p, h, 5);
    put(p, s, n);
}

static void put_int(struct buf *p, int v) /* BININT1 */
{
    unsigned char h[2] = {'K', (unsigned char)v};
    put(p, h, 2);
}

/* {"w": tensor} with the given storage type/numel and the view (offset, size[0], stride[0]) */
static void tensor_pickle(struct buf *p, const char *storage, int numel, int off, int size, int stride)
{
    put(p, "\x80\x02}", 3);
    put_str(p, "w");
    put(p, "ctorch._utils\n_rebuild_tensor_v2\n((", 35);
    put_str(p, "storage");
    put(p, "c", 1);
    put(p, storage, strlen(storage));
    put_str(p, "0");
    put_str(p, "cpu");
    put_int(p, numel);
    put(p, "tQ", 2);
    put_int(p, off);
    put_int(p, size);
    put(p, "\x85", 1);
    put_int(p, stride);
    put(p, "\x85\x89" "ccollections\nOrderedDict\n)R", 29);
    put(p, "tRs.", 4);
}

/* A zip at path with archive/data.pkl = pkl and archive/data/0 = n_data bytes. */
static void write_zip(const char *path, const struct buf *pkl, size_t n_data)
{
    static unsigned char data[256];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 37);
    int ze = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    AVS_ASSERT(za && n_data <= sizeof data);
    zip_source_t *s1 = zip_source_buffer(za, pkl->b, pkl->n, 0);
    zip_source_t *s2 = zip_source_buffer(za, data, n_data, 0);
    AVS_ASSERT(s1 && s2);
    AVS_ASSERT(zip_file_add(za, "archive/data.pkl", s1, ZIP_FL_OVERWRITE) >= 0);
    AVS_ASSERT(zip_file_add(za, "archive/data/0", s2, ZIP_FL_OVERWRITE) >= 0);
    AVS_ASSERT(zip_close(za) == 0);
}

static void crafted(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/crafted.pth", check_tmpdir());
    struct buf p = {0};
    /* a good one first: 4 floats at offset 1, stride 2 of a 9-element storage */
    tensor_pickle(&p, "torch\nFloatStorage\n", 9, 1, 4, 2);
    write_zip(path, &p, 36);
    struct avs_st_file *f = NULL;
    struct avs_err err = {{0}};
    CHECK(avs_st_open(path, &f, &err) == 0, "crafted: %s", err.msg);
    if (f) {
        const struct avs_st_tensor *t = avs_st_find(f, "w");
        float want[4], got[4] = {0};
        unsigned char d[36];
        for (int i = 0; i < 36; i++)
            d[i] = (unsigned char)(i * 37);
        for (int i = 0; i < 4; i++)
            memcpy(&want[i], d + 4 * (1 + 2 * i), 4);
        CHECK(t && t->ndim == 1 && t->shape[0] == 4 && !avs_st_read_f32(t, got, 4, &err) &&
              !memcmp(got, want, sizeof got), "crafted strided view: wrong elements");
        avs_st_close(&f);
    }
    static const struct {
        const char *storage;
        int numel, off, size, stride;
        size_t bytes;
        const char *words;
    } BAD[] = {
        {"torch\nFloatStorage\n", 9, 3, 4, 2, 36, "reaches element 9 of its storage"},
        {"torch\nFloatStorage\n", 9, 0, 4, 2, 32, "has 32 bytes, the pickle says 9 elements"},
        {"torch\nShortStorage\n", 9, 0, 4, 2, 18, "torch.ShortStorage holds a dtype"},
        {"posix\nsystem\n", 9, 0, 4, 2, 36, "refused the global posix.system"},
        {"torch\nFloatStorage\n", 2, 0, 4, 0, 8, "repeats elements"},
    };
    for (size_t k = 0; k < sizeof BAD / sizeof BAD[0]; k++) {
        p.n = 0;
        tensor_pickle(&p, BAD[k].storage, BAD[k].numel, BAD[k].off, BAD[k].size, BAD[k].stride);
        write_zip(path, &p, BAD[k].bytes);
        expect_refused(path, BAD[k].words);
    }
#define S(lit) lit, sizeof lit - 1
    static const struct {
        const char *pkl;
        size_t n;
        const char *words;
    } RAW[] = {
        {S("\x80\x02" "cos\nsystem\nX\x02\0\0\0ls\x85R."), "refused the global os.system"},
        {S("\x80\x02(i__main__\nEvil\n."), "opcode INST: refused"},
        {S("\x80\x02}q\x05."), "memo index out of sequence"},
        {S("\x80\x02h\x00."), "memo index never stored"},
        {S("\x80\x02s."), "stack underflow"},
        {S("\x80\x02}X\x01\0\0\0a"), "ends before STOP"},
        {S("\x80\x02X\xff\xff\0\0ab."), "runs past the end"},
        {S("\x80\x02" "ccollections\nOrderedDict\nK\x01\x85R."), "OrderedDict called with arguments"},
        {S("\x80\x02]K\x01" "ctorch\nFloatStorage\n)R."), "only allowed inside a persistent id"},
        {S("\x80\x02\x8a\x09\0\0\0\0\0\0\0\0\x01."), "wider than 64 bits"},
        {S("\x80\x02]\x8f."), "opcode EMPTY_SET: refused"},
        {S("\x80\x02}K\x01K\x02s."), "no tensors at the top level"},
    };
    for (size_t k = 0; k < sizeof RAW / sizeof RAW[0]; k++) {
        p.n = 0;
        put(&p, RAW[k].pkl, RAW[k].n);
        write_zip(path, &p, 0);
        expect_refused(path, RAW[k].words);
    }
}

int main(void)
{
    static const char *const ACCEPTED[] = {"dtypes", "nested_state_dict", "nested_model", "prefixed",
                                           "partial_prefix", "views", "parameters", "proto4",
                                           "big_endian"};
    for (size_t i = 0; i < sizeof ACCEPTED / sizeof ACCEPTED[0]; i++)
        compare(ACCEPTED[i]);
    refusals();
    crafted();
    return check_summary("test_core_pth");
}
