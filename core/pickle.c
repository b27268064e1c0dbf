/* core/pickle.c: the restricted unpickler of core/pickle.h. A stack machine over the opcodes a
 * state_dict uses (ref: CPython Lib/pickle.py, the opcode table of Lib/pickletools.py; torch's
 * persistent id: torch/serialization.py _save). Values live until avs_pk_free; containers hold
 * pointers, so a memoised dict filled later (SETITEMS after BINPUT) is the same object. */
#include "core/pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the allowed globals (avs_pk_value.i of a GLOBAL) */
enum glob { G_ORDERED_DICT, G_REBUILD_TENSOR, G_REBUILD_TENSOR_V2, G_REBUILD_PARAM,
            G_REBUILD_PARAM_STATE, G_STORAGE };

static const struct {
    const char *name;
    enum glob g;
    enum avs_st_dtype dtype;
} GLOBALS[] = {
    {"collections.OrderedDict", G_ORDERED_DICT, 0},
    {"torch._utils._rebuild_tensor", G_REBUILD_TENSOR, 0},
    {"torch._utils._rebuild_tensor_v2", G_REBUILD_TENSOR_V2, 0},
    {"torch._utils._rebuild_parameter", G_REBUILD_PARAM, 0},
    {"torch._utils._rebuild_parameter_with_state", G_REBUILD_PARAM_STATE, 0},
    {"torch.FloatStorage", G_STORAGE, AVS_ST_F32},
    {"torch.HalfStorage", G_STORAGE, AVS_ST_F16},
    {"torch.BFloat16Storage", G_STORAGE, AVS_ST_BF16},
    {"torch.DoubleStorage", G_STORAGE, AVS_ST_F64},
    {"torch.LongStorage", G_STORAGE, AVS_ST_I64},
    {"torch.IntStorage", G_STORAGE, AVS_ST_I32},
    {"torch.ByteStorage", G_STORAGE, AVS_ST_U8},
    {"torch.BoolStorage", G_STORAGE, AVS_ST_BOOL},
    {"torch.UntypedStorage", G_STORAGE, AVS_ST_U8},
    {"torch.storage.UntypedStorage", G_STORAGE, AVS_ST_U8},
};
#define N_GLOBALS ((int)(sizeof GLOBALS / sizeof GLOBALS[0]))

static const struct {
    unsigned char op;
    const char *name;
} OPNAMES[] = {
    {'(', "MARK"}, {'.', "STOP"}, {'0', "POP"}, {'1', "POP_MARK"}, {'2', "DUP"}, {'F', "FLOAT"},
    {'I', "INT"}, {'J', "BININT"}, {'K', "BININT1"}, {'L', "LONG"}, {'M', "BININT2"},
    {'N', "NONE"}, {'P', "PERSID"}, {'Q', "BINPERSID"}, {'R', "REDUCE"}, {'S', "STRING"},
    {'T', "BINSTRING"}, {'U', "SHORT_BINSTRING"}, {'V', "UNICODE"}, {'X', "BINUNICODE"},
    {'a', "APPEND"}, {'b', "BUILD"}, {'c', "GLOBAL"}, {'d', "DICT"}, {'}', "EMPTY_DICT"},
    {'e', "APPENDS"}, {'g', "GET"}, {'h', "BINGET"}, {'i', "INST"}, {'j', "LONG_BINGET"},
    {'l', "LIST"}, {']', "EMPTY_LIST"}, {'o', "OBJ"}, {'p', "PUT"}, {'q', "BINPUT"},
    {'r', "LONG_BINPUT"}, {'s', "SETITEM"}, {'t', "TUPLE"}, {')', "EMPTY_TUPLE"},
    {'u', "SETITEMS"}, {'G', "BINFLOAT"}, {0x80, "PROTO"}, {0x81, "NEWOBJ"}, {0x82, "EXT1"},
    {0x83, "EXT2"}, {0x84, "EXT4"}, {0x85, "TUPLE1"}, {0x86, "TUPLE2"}, {0x87, "TUPLE3"},
    {0x88, "NEWTRUE"}, {0x89, "NEWFALSE"}, {0x8a, "LONG1"}, {0x8b, "LONG4"}, {'B', "BINBYTES"},
    {'C', "SHORT_BINBYTES"}, {0x8c, "SHORT_BINUNICODE"}, {0x8d, "BINUNICODE8"},
    {0x8e, "BINBYTES8"}, {0x8f, "EMPTY_SET"}, {0x90, "ADDITEMS"}, {0x91, "FROZENSET"},
    {0x92, "NEWOBJ_EX"}, {0x93, "STACK_GLOBAL"}, {0x94, "MEMOIZE"}, {0x95, "FRAME"},
    {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"},
};

static const char *opname(unsigned char op)
{
    for (size_t i = 0; i < sizeof OPNAMES / sizeof OPNAMES[0]; i++)
        if (OPNAMES[i].op == op)
            return OPNAMES[i].name;
    return "unknown";
}

struct avs_pk {
    struct avs_pk_value *all, *root;
    const unsigned char *base, *p, *end;
    const char *what;
    struct avs_err *err;
    size_t op_at; /* offset of the opcode being run, for messages */
    unsigned char op;
    struct avs_pk_value **stack;
    size_t sn, scap;
    size_t *marks; /* stack heights at each MARK */
    size_t mn, mcap;
    struct avs_pk_value **memo;
    size_t memon;
};

const char *avs_pk_kind_name(enum avs_pk_kind k)
{
    static const char *names[] = {"None", "bool", "int", "float", "str", "tuple", "list",
                                  "dict", "global", "storage", "tensor"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static int fail(struct avs_pk *pk, const char *fmt, const char *a)
{
    char why[512];
    snprintf(why, sizeof why, fmt, a);
    return avs_err_set(pk->err, "%s: byte %zu, opcode %s: %s", pk->what, pk->op_at,
                       opname(pk->op), why);
}

static int corrupt(struct avs_pk *pk, const char *why)
{
    return fail(pk, "%s: the pickle is corrupt or truncated; re-download or re-save the checkpoint",
                why);
}

static struct avs_pk_value *new_value(struct avs_pk *pk, enum avs_pk_kind kind)
{
    struct avs_pk_value *v = avs_calloc(1, sizeof *v);
    v->kind = kind;
    v->next = pk->all;
    pk->all = v;
    return v;
}

static void push(struct avs_pk *pk, struct avs_pk_value *v)
{
    if (pk->sn == pk->scap) {
        pk->scap = pk->scap ? 2 * pk->scap : 64;
        pk->stack = avs_realloc(pk->stack, pk->scap * sizeof *pk->stack);
    }
    pk->stack[pk->sn++] = v;
}

/* the stack's floor: values under the last MARK are not this opcode's */
static size_t floor_of(const struct avs_pk *pk)
{
    return pk->mn ? pk->marks[pk->mn - 1] : 0;
}

static struct avs_pk_value *pop(struct avs_pk *pk)
{
    if (pk->sn <= floor_of(pk)) {
        corrupt(pk, "stack underflow");
        return NULL;
    }
    return pk->stack[--pk->sn];
}

static struct avs_pk_value *top(struct avs_pk *pk)
{
    if (pk->sn <= floor_of(pk)) {
        corrupt(pk, "stack underflow");
        return NULL;
    }
    return pk->stack[pk->sn - 1];
}

/* Take the n bytes after the opcode's arguments read so far. */
static const unsigned char *take(struct avs_pk *pk, size_t n)
{
    if ((size_t)(pk->end - pk->p) < n) {
        corrupt(pk, "runs past the end of the data");
        return NULL;
    }
    const unsigned char *q = pk->p;
    pk->p += n;
    return q;
}

static int read_uint(struct avs_pk *pk, int nbytes, uint64_t *v)
{
    const unsigned char *q = take(pk, (size_t)nbytes);
    if (!q)
        return -1;
    *v = 0;
    for (int i = nbytes - 1; i >= 0; i--)
        *v = (*v << 8) | q[i];
    return 0;
}

static void add_item(struct avs_pk_value *c, struct avs_pk_value *x)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->items = avs_realloc(c->items, (size_t)c->cap * sizeof *c->items);
    }
    c->items[c->n++] = x;
}

/* ---- values ---- */

static int push_int(struct avs_pk *pk, enum avs_pk_kind kind, int64_t i)
{
    new_value(pk, kind)->i = i;
    push(pk, pk->all);
    return 0;
}

static int push_str(struct avs_pk *pk, size_t len_bytes)
{
    uint64_t n;
    if (read_uint(pk, (int)len_bytes, &n))
        return -1;
    const unsigned char *q = take(pk, n);
    if (!q)
        return -1;
    struct avs_pk_value *v = new_value(pk, AVS_PK_STR);
    v->s = avs_malloc((size_t)n + 1);
    memcpy(v->s, q, (size_t)n);
    v->s[n] = 0;
    v->len = (size_t)n;
    push(pk, v);
    return 0;
}

/* LONG1: a little-endian two's-complement integer of n <= 8 bytes */
static int push_long1(struct avs_pk *pk)
{
    uint64_t n, u = 0;
    if (read_uint(pk, 1, &n))
        return -1;
    if (n > 8)
        return fail(pk, "%s", "an integer wider than 64 bits: not a state_dict value");
    if (n && read_uint(pk, (int)n, &u))
        return -1;
    if (n && n < 8 && (u >> (8 * n - 1)) & 1)
        u |= ~(uint64_t)0 << (8 * n);
    return push_int(pk, AVS_PK_INT, (int64_t)u);
}

static int push_float(struct avs_pk *pk)
{
    const unsigned char *q = take(pk, 8);
    if (!q)
        return -1;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) /* big-endian IEEE double */
        u = (u << 8) | q[i];
    double d;
    memcpy(&d, &u, 8);
    new_value(pk, AVS_PK_FLOAT)->f = d;
    push(pk, pk->all);
    return 0;
}

/* The values above the last MARK into a new container (the mark is dropped). */
static int collect(struct avs_pk *pk, enum avs_pk_kind kind)
{
    if (!pk->mn)
        return corrupt(pk, "no MARK before it");
    size_t from = pk->marks[--pk->mn];
    struct avs_pk_value *c = new_value(pk, kind);
    if (kind == AVS_PK_DICT && (pk->sn - from) % 2)
        return corrupt(pk, "a key without a value");
    for (size_t k = from; k < pk->sn; k++)
        add_item(c, pk->stack[k]);
    pk->sn = from;
    push(pk, c);
    return 0;
}

static int tuple_n(struct avs_pk *pk, int n)
{
    if (pk->sn < floor_of(pk) + (size_t)n)
        return corrupt(pk, "stack underflow");
    struct avs_pk_value *t = new_value(pk, AVS_PK_TUPLE);
    for (size_t k = pk->sn - (size_t)n; k < pk->sn; k++)
        add_item(t, pk->stack[k]);
    pk->sn -= (size_t)n;
    push(pk, t);
    return 0;
}

/* SETITEM(S), APPEND(S): into the container under the mark (or under the top pair/item) */
static int fill(struct avs_pk *pk, int from_mark, enum avs_pk_kind kind)
{
    size_t from;
    if (from_mark) {
        if (!pk->mn)
            return corrupt(pk, "no MARK before it");
        from = pk->marks[--pk->mn];
    } else {
        size_t need = kind == AVS_PK_DICT ? 2 : 1;
        if (pk->sn < floor_of(pk) + need)
            return corrupt(pk, "stack underflow");
        from = pk->sn - need;
    }
    if (from <= floor_of(pk) || (kind == AVS_PK_DICT && (pk->sn - from) % 2))
        return corrupt(pk, "no container or a key without a value");
    struct avs_pk_value *c = pk->stack[from - 1];
    if (c->kind != kind)
        return fail(pk, "adds items to a %s: not a state_dict structure", avs_pk_kind_name(c->kind));
    for (size_t k = from; k < pk->sn; k++)
        add_item(c, pk->stack[k]);
    pk->sn = from;
    return 0;
}

/* ---- memo ---- */

static int memo_put(struct avs_pk *pk, uint64_t idx)
{
    struct avs_pk_value *v = top(pk);
    if (!v)
        return -1;
    /* Python's pickler numbers memo entries 0, 1, 2...: a later index cannot come first */
    if (idx > pk->memon)
        return corrupt(pk, "memo index out of sequence");
    if (idx == pk->memon)
        pk->memo = avs_realloc(pk->memo, (size_t)(++pk->memon) * sizeof *pk->memo);
    pk->memo[idx] = v;
    return 0;
}

static int memo_get(struct avs_pk *pk, uint64_t idx)
{
    if (idx >= pk->memon)
        return corrupt(pk, "memo index never stored");
    push(pk, pk->memo[idx]);
    return 0;
}

/* ---- globals, persistent ids, calls ---- */

static int push_global(struct avs_pk *pk, const char *mod, size_t mlen, const char *name,
                       size_t nlen)
{
    char full[256];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)(mlen < 100 ? mlen : 100), mod,
             (int)(nlen < 100 ? nlen : 100), name);
    for (size_t k = 0; full[k]; k++)
        if ((unsigned char)full[k] < 0x20 || (unsigned char)full[k] > 0x7e)
            full[k] = '?';
    for (int g = 0; g < N_GLOBALS; g++)
        if (!strcmp(full, GLOBALS[g].name) && strlen(GLOBALS[g].name) == mlen + 1 + nlen) {
            struct avs_pk_value *v = new_value(pk, AVS_PK_GLOBAL);
            v->i = GLOBALS[g].g;
            v->dtype = GLOBALS[g].dtype;
            v->s = avs_strdup(full);
            push(pk, v);
            return 0;
        }
    if (strstr(full, "Storage") && !strncmp(full, "torch.", 6))
        return fail(pk, "the storage type %s holds a dtype we do not read (float32, float16, "
                    "bfloat16, float64, int64, int32, uint8, bool); convert the checkpoint with "
                    "tools/convert_checkpoint.py", full);
    return fail(pk, "refused the global %s: a state_dict pickles only tensors, dicts and plain "
                "values, so this is not loaded and nothing was executed (a whole pickled model "
                "or a foreign object; re-save the weights: torch.save(model.state_dict(), "
                "'weights.pth'))", full);
}

/* GLOBAL: "module\nname\n" */
static int op_global(struct avs_pk *pk)
{
    const unsigned char *m = pk->p, *nl = memchr(m, '\n', (size_t)(pk->end - m));
    if (!nl)
        return corrupt(pk, "unterminated module name");
    const unsigned char *n = nl + 1, *nl2 = memchr(n, '\n', (size_t)(pk->end - n));
    if (!nl2)
        return corrupt(pk, "unterminated global name");
    pk->p = nl2 + 1;
    return push_global(pk, (const char *)m, (size_t)(nl - m), (const char *)n, (size_t)(nl2 - n));
}

static int op_stack_global(struct avs_pk *pk)
{
    struct avs_pk_value *name = pop(pk), *mod = name ? pop(pk) : NULL;
    if (!mod)
        return -1;
    if (mod->kind != AVS_PK_STR || name->kind != AVS_PK_STR)
        return corrupt(pk, "module and name are not strings");
    return push_global(pk, mod->s, mod->len, name->s, name->len);
}

static int is_str(const struct avs_pk_value *v, const char *s)
{
    return v->kind == AVS_PK_STR && v->len == strlen(s) && !memcmp(v->s, s, v->len);
}

/* BINPERSID: ('storage', storage type, key, location, numel) as torch.save writes it */
static int op_persid(struct avs_pk *pk)
{
    struct avs_pk_value *id = pop(pk);
    if (!id)
        return -1;
    if (id->kind != AVS_PK_TUPLE || id->n != 5 || !is_str(id->items[0], "storage"))
        return fail(pk, "%s", "a persistent id that is not torch.save's ('storage', type, key, "
                    "location, numel)");
    const struct avs_pk_value *ty = id->items[1], *key = id->items[2], *loc = id->items[3],
                              *numel = id->items[4];
    if (ty->kind != AVS_PK_GLOBAL || ty->i != G_STORAGE)
        return fail(pk, "%s", "a persistent id whose type is not a storage type");
    if (key->kind != AVS_PK_STR || !key->len || key->len > 64 || strlen(key->s) != key->len ||
        loc->kind != AVS_PK_STR || numel->kind != AVS_PK_INT || numel->i < 0)
        return corrupt(pk, "a storage id with a bad key, location or size");
    struct avs_pk_value *v = new_value(pk, AVS_PK_STORAGE);
    v->s = avs_strdup(key->s);
    v->dtype = ty->dtype;
    v->i = numel->i;
    push(pk, v);
    return 0;
}

static int int_tuple(const struct avs_pk_value *t, int64_t *out, int max)
{
    if (t->kind != AVS_PK_TUPLE || t->n > max)
        return -1;
    for (int k = 0; k < t->n; k++) {
        if (t->items[k]->kind != AVS_PK_INT)
            return -1;
        out[k] = t->items[k]->i;
    }
    return t->n;
}

/* _rebuild_tensor(storage, offset, size, stride) and _v2 (..., requires_grad, hooks[, meta]) */
static struct avs_pk_value *rebuild_tensor(struct avs_pk *pk, const struct avs_pk_value *a, int v2)
{
    int ok = v2 ? a->n == 6 || a->n == 7 : a->n == 4;
    int64_t sz[AVS_ST_MAXDIM], st[AVS_ST_MAXDIM];
    int nd = ok ? int_tuple(a->items[2], sz, AVS_ST_MAXDIM) : -1;
    if (!ok || a->items[0]->kind != AVS_PK_STORAGE || a->items[1]->kind != AVS_PK_INT || nd < 0 ||
        int_tuple(a->items[3], st, AVS_ST_MAXDIM) != nd) {
        fail(pk, "%s", "a tensor rebuild whose arguments are not (storage, offset, size, stride, "
             "...) with at most 8 dims");
        return NULL;
    }
    if (a->n == 7 && !(a->items[6]->kind == AVS_PK_NONE ||
                       (a->items[6]->kind == AVS_PK_DICT && a->items[6]->n == 0))) {
        fail(pk, "%s", "a tensor with extra metadata (conjugate/negative bits?): save "
             "t.resolve_conj().resolve_neg() instead");
        return NULL;
    }
    struct avs_pk_value *t = new_value(pk, AVS_PK_TENSOR);
    t->storage = a->items[0];
    t->offset = a->items[1]->i;
    t->ndim = nd;
    memcpy(t->size, sz, sizeof sz);
    memcpy(t->stride, st, sizeof st);
    return t;
}

static int op_reduce(struct avs_pk *pk)
{
    struct avs_pk_value *args = pop(pk), *fn = args ? pop(pk) : NULL, *r = NULL;
    if (!fn)
        return -1;
    if (fn->kind != AVS_PK_GLOBAL)
        return fail(pk, "calls a %s: only the allowed globals are called", avs_pk_kind_name(fn->kind));
    if (args->kind != AVS_PK_TUPLE)
        return corrupt(pk, "call arguments are not a tuple");
    switch ((enum glob)fn->i) {
    case G_ORDERED_DICT:
        if (args->n != 0)
            return fail(pk, "%s", "collections.OrderedDict called with arguments (not as "
                        "torch.save pickles it)");
        r = new_value(pk, AVS_PK_DICT);
        break;
    case G_REBUILD_TENSOR:
    case G_REBUILD_TENSOR_V2:
        if (!(r = rebuild_tensor(pk, args, fn->i == G_REBUILD_TENSOR_V2)))
            return -1;
        break;
    case G_REBUILD_PARAM:
    case G_REBUILD_PARAM_STATE:
        if (args->n < 3 || args->n > 4 || args->items[0]->kind != AVS_PK_TENSOR)
            return fail(pk, "%s", "a parameter rebuild whose first argument is not a tensor");
        r = args->items[0];
        break;
    default:
        return fail(pk, "calls %s: a storage type is only allowed inside a persistent id", fn->s);
    }
    push(pk, r);
    return 0;
}

/* BUILD: only the attribute dict an OrderedDict carries (state_dict's _metadata), dropped */
static int op_build(struct avs_pk *pk)
{
    struct avs_pk_value *state = pop(pk), *obj = state ? top(pk) : NULL;
    if (!obj)
        return -1;
    if (obj->kind != AVS_PK_DICT)
        return fail(pk, "sets the state of a %s: not a state_dict structure",
                    avs_pk_kind_name(obj->kind));
    return 0;
}

/* ---- the machine ---- */

static int step(struct avs_pk *pk, int *stop)
{
    uint64_t u;
    pk->op_at = (size_t)(pk->p - pk->base);
    pk->op = *pk->p++;
    switch (pk->op) {
    case 0x80: /* PROTO */
        if (read_uint(pk, 1, &u))
            return -1;
        return u >= 2 && u <= 5 ? 0 : fail(pk, "%s", "a pickle protocol other than 2..5");
    case 0x95: /* FRAME: a length hint */
        return take(pk, 8) ? 0 : -1;
    case '.':
        if (!(pk->root = pop(pk)))
            return -1;
        *stop = 1;
        return 0;
    case '(':
        if (pk->mn == pk->mcap) {
            pk->mcap = pk->mcap ? 2 * pk->mcap : 16;
            pk->marks = avs_realloc(pk->marks, pk->mcap * sizeof *pk->marks);
        }
        pk->marks[pk->mn++] = pk->sn;
        return 0;
    case '0':
        return pop(pk) ? 0 : -1;
    case '1':
        if (!pk->mn)
            return corrupt(pk, "no MARK before it");
        pk->sn = pk->marks[--pk->mn];
        return 0;
    case 'N': return push_int(pk, AVS_PK_NONE, 0);
    case 0x88: return push_int(pk, AVS_PK_BOOL, 1);
    case 0x89: return push_int(pk, AVS_PK_BOOL, 0);
    case 'J':
        return read_uint(pk, 4, &u) ? -1 : push_int(pk, AVS_PK_INT, (int32_t)(uint32_t)u);
    case 'K': return read_uint(pk, 1, &u) ? -1 : push_int(pk, AVS_PK_INT, (int64_t)u);
    case 'M': return read_uint(pk, 2, &u) ? -1 : push_int(pk, AVS_PK_INT, (int64_t)u);
    case 0x8a: return push_long1(pk);
    case 'G': return push_float(pk);
    case 'X': case 'T': case 'B': return push_str(pk, 4);
    case 0x8c: case 'U': case 'C': return push_str(pk, 1);
    case 0x8d: case 0x8e: return push_str(pk, 8);
    case ')': return tuple_n(pk, 0);
    case 0x85: return tuple_n(pk, 1);
    case 0x86: return tuple_n(pk, 2);
    case 0x87: return tuple_n(pk, 3);
    case 't': return collect(pk, AVS_PK_TUPLE);
    case 'l': return collect(pk, AVS_PK_LIST);
    case 'd': return collect(pk, AVS_PK_DICT);
    case ']': return push_int(pk, AVS_PK_LIST, 0);
    case '}': return push_int(pk, AVS_PK_DICT, 0);
    case 'a': return fill(pk, 0, AVS_PK_LIST);
    case 'e': return fill(pk, 1, AVS_PK_LIST);
    case 's': return fill(pk, 0, AVS_PK_DICT);
    case 'u': return fill(pk, 1, AVS_PK_DICT);
    case 'q': return read_uint(pk, 1, &u) ? -1 : memo_put(pk, u);
    case 'r': return read_uint(pk, 4, &u) ? -1 : memo_put(pk, u);
    case 0x94: return memo_put(pk, pk->memon);
    case 'h': return read_uint(pk, 1, &u) ? -1 : memo_get(pk, u);
    case 'j': return read_uint(pk, 4, &u) ? -1 : memo_get(pk, u);
    case 'c': return op_global(pk);
    case 0x93: return op_stack_global(pk);
    case 'Q': return op_persid(pk);
    case 'R': return op_reduce(pk);
    case 'b': return op_build(pk);
    default:
        return fail(pk, "%s", "refused: not an opcode a state_dict pickle uses (nothing was "
                    "executed); re-save the weights: torch.save(model.state_dict(), 'weights.pth')");
    }
}

int avs_pk_load(const unsigned char *data, size_t len, const char *what, struct avs_pk **out,
                struct avs_err *err)
{
    struct avs_pk *pk = avs_calloc(1, sizeof *pk);
    pk->base = pk->p = data;
    pk->end = data + len;
    pk->what = what;
    pk->err = err;
    int stop = 0;
    while (!stop) {
        if (pk->p >= pk->end) {
            pk->op_at = len;
            pk->op = '.';
            corrupt(pk, "the data ends before STOP");
            break;
        }
        if (step(pk, &stop))
            break;
    }
    free(pk->stack), free(pk->marks), free(pk->memo);
    pk->stack = NULL, pk->marks = NULL, pk->memo = NULL;
    if (!stop) {
        avs_pk_free(&pk);
        return -1;
    }
    *out = pk;
    return 0;
}

const struct avs_pk_value *avs_pk_root(const struct avs_pk *pk)
{
    return pk->root;
}

void avs_pk_free(struct avs_pk **ppk)
{
    struct avs_pk *pk = *ppk;
    if (!pk)
        return;
    for (struct avs_pk_value *v = pk->all, *nx; v; v = nx) {
        nx = v->next;
        free(v->s);
        free(v->items);
        free(v);
    }
    free(pk->stack), free(pk->marks), free(pk->memo);
    free(pk);
    *ppk = NULL;
}

const struct avs_pk_value *avs_pk_dict_get(const struct avs_pk_value *d, const char *key)
{
    const struct avs_pk_value *r = NULL;
    if (d->kind != AVS_PK_DICT)
        return NULL;
    for (int k = 0; k + 1 < d->n; k += 2)
        if (is_str(d->items[k], key))
            r = d->items[k + 1];
    return r;
}
