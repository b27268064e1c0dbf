/* core/pickle.h: a restricted reader of the pickle inside a PyTorch checkpoint (the data.pkl
 * record of a torch.save zip, core/pth.h). It builds a tree of plain values and never executes
 * or imports anything: only what a state_dict pickles is accepted, everything else is refused
 * with a message that names the opcode or the global and its byte offset.
 *
 *   struct avs_pk *pk;
 *   if (avs_pk_load(bytes, len, "w.pth (archive/data.pkl)", &pk, &err)) ...;
 *   const struct avs_pk_value *root = avs_pk_root(pk);     a DICT of TENSORs, usually
 *   avs_pk_free(&pk);                                      frees every value of the parse
 *
 * Accepted (protocols 2..5, torch.save writes 2): None, bools, ints (up to 64 bits), floats,
 * strings and bytes, tuples, lists, dicts, the memo, and these globals:
 *   collections.OrderedDict                        called with () -> an empty DICT (its BUILD
 *                                                  state, the state_dict's _metadata, is dropped)
 *   torch._utils._rebuild_tensor(_v2)              (storage, offset, size, stride, ...) -> TENSOR
 *   torch._utils._rebuild_parameter(_with_state)   (tensor, requires_grad, hooks[, state]) -> it
 *   torch.<Float|Half|BFloat16|Double|Long|Int|Byte|Bool|Untyped>Storage, only inside the
 *   persistent id ('storage', type, key, location, numel) -> STORAGE
 * Anything else (another global such as os.system or a model class, INST/OBJ/NEWOBJ, EXT,
 * sets, buffers, text-protocol numbers, a REDUCE of something not listed) is refused.
 * Sizes and lengths from the stream are checked against what is left of it.
 */
#ifndef AVS_CORE_PICKLE_H
#define AVS_CORE_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/safetensors.h"

enum avs_pk_kind {
    AVS_PK_NONE,
    AVS_PK_BOOL,
    AVS_PK_INT,
    AVS_PK_FLOAT,
    AVS_PK_STR, /* str or bytes */
    AVS_PK_TUPLE,
    AVS_PK_LIST,
    AVS_PK_DICT,
    AVS_PK_GLOBAL,  /* one of the allowed globals (not called yet) */
    AVS_PK_STORAGE, /* a persistent-id storage: the zip record data/<key> */
    AVS_PK_TENSOR
};

struct avs_pk_value {
    enum avs_pk_kind kind;
    int64_t i;   /* BOOL, INT; GLOBAL: which (pickle.c); STORAGE: numel (elements) */
    double f;    /* FLOAT */
    char *s;     /* STR: NUL-terminated copy (len bytes, may hold NULs); STORAGE: its key;
                    GLOBAL: "module.name" */
    size_t len;  /* STR */
    struct avs_pk_value **items; /* TUPLE, LIST: [n]; DICT: [n] key, value, key, value... */
    int n, cap;
    enum avs_st_dtype dtype; /* STORAGE, GLOBAL of a storage type */
    /* TENSOR: elements storage[offset + sum_d idx_d * stride[d]], d < ndim */
    struct avs_pk_value *storage;
    int64_t offset;
    int ndim;
    int64_t size[AVS_ST_MAXDIM], stride[AVS_ST_MAXDIM];
    struct avs_pk_value *next; /* every value of the parse, for avs_pk_free */
};

struct avs_pk;

/* Parse a whole pickle (up to its STOP). what names it in messages. */
int avs_pk_load(const unsigned char *data, size_t len, const char *what, struct avs_pk **out,
                struct avs_err *err);
const struct avs_pk_value *avs_pk_root(const struct avs_pk *pk);
void avs_pk_free(struct avs_pk **pk);
/* The value of a DICT under a string key (the last one if repeated), or NULL. */
const struct avs_pk_value *avs_pk_dict_get(const struct avs_pk_value *d, const char *key);
/* "dict", "tensor", ...: for messages. */
const char *avs_pk_kind_name(enum avs_pk_kind k);

#endif
