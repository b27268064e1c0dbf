/* core/hash.h: the content hash of the suite: murmur3-128 as libavutil computes it
 * (MurmurHash3_x64_128 with libavutil's default seed 0x725acc55daddca55), as 32 hex digits.
 * It identifies inputs in the index (videos.hash, the listing of imported AVSBench frames),
 * weight and vector files in feature-set and run configs, and label similarities
 * (label_similarity.vectors_hash). Stored hashes must keep their value: the seed and byte
 * order (h1 then h2, each little-endian) are pinned by tests/test_core_hash.c.
 *
 *   char hex[33];
 *   if (avs_hash_file("w.safetensors", hex, &err)) ...;       one file
 *   struct avs_hash h;
 *   avs_hash_init(&h); avs_hash_update(&h, buf, n); ...; avs_hash_final(&h, hex);   a stream
 */
#ifndef AVS_CORE_HASH_H
#define AVS_CORE_HASH_H

#include <stddef.h>

#include "core/common.h"

struct avs_hash {
    void *state; /* libavutil's AVMurMur3 */
};

void avs_hash_init(struct avs_hash *h);
void avs_hash_update(struct avs_hash *h, const void *data, size_t n);
/* hex: 32 lowercase hex digits + NUL. Frees the state (h may be initialised again). */
void avs_hash_final(struct avs_hash *h, char hex[33]);

/* The hash of a file's bytes. 0, or -1 with err naming the file. */
int avs_hash_file(const char *path, char hex[33], struct avs_err *err);

#endif
