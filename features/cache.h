/* features/cache.h: the feature cache file (DESIGN §2/§5): fixed-size records of named float
 * tensors, fp32 or fp16, appended one per (video, second, flip); mmap'd for training.
 *
 *   +------------------------------------------------------------------------------------+
 *   | header, 64 bytes, little-endian:                                                   |
 *   |   char magic[8] = "AVSFEAT\0"; u32 version (2); u32 dtype (0 f32, 1 f16);          |
 *   |   u32 n_fields; u32 reserved; u64 record_bytes; u64 data_offset;                   |
 *   |   u64 header_xxh3 (of the header + field table with these 8 bytes zero); 8 zero    |
 *   | field table: n_fields x 64 bytes {char name[40]; u32 ndim; u32 shape[4]; u32 pad}  |
 *   | records from data_offset: record i at data_offset + i * record_bytes, its fields   |
 *   |   back to back in table order, each numel x (4 or 2) bytes, then u64 record_xxh3 = |
 *   |   XXH3_64bits_withSeed(the fields' bytes, seed = the record's byte offset)         |
 *   +------------------------------------------------------------------------------------+
 * The index (feature_entries.offset) holds each record's byte offset. A file whose size is not
 * data_offset + k * record_bytes ends in a record cut by a crash: opening for append drops it.
 *
 * Integrity (README "Reliability"): the writer refuses a record with a NaN/Inf (also a value
 * beyond fp16's range); the reader checks the header's checksum at open and each record's
 * checksum and NaN/Inf before its first read (avs_cache_verify; avs_cache_read does it itself,
 * so nothing unverified is ever returned). Seeding with the offset also catches a record
 * written at the wrong place. Version 1 files (no checksums) are refused with the rebuild
 * command: their layout differs and their contents cannot be vouched for.
 *
 *   struct avs_cache_field f[2] = {{"logits", 1, {1000}}, {"stage4", 3, {512, 7, 7}}};
 *   struct avs_cache_writer *w;
 *   avs_cache_open_append(&w, path, f, 2, AVS_CACHE_F16, &err);   creates or resumes
 *   const float *rec[2] = {logits, stage4};
 *   int64_t off; avs_cache_append(w, rec, &off, &err);  ...  avs_cache_sync(w, &err);
 *   avs_cache_close_writer(&w);
 *
 *   struct avs_cache *c; avs_cache_open(&c, path, &err);
 *   avs_cache_verify(c, off, &err);                       optional: checksum + NaN/Inf now
 *   avs_cache_read(c, off, 1, dst, &err);                 field 1 of the record as float
 *   avs_cache_close(&c);
 */
#ifndef AVS_FEATURES_CACHE_H
#define AVS_FEATURES_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

#define AVS_CACHE_VERSION 2
#define AVS_CACHE_MAXFIELDS 64

enum avs_cache_dtype { AVS_CACHE_F32 = 0, AVS_CACHE_F16 = 1 };

struct avs_cache_field {
    char name[40];
    int ndim;     /* 1..4 */
    int shape[4];
};

struct avs_cache_writer;
struct avs_cache {
    char *path;
    const uint8_t *map;
    size_t len;
    enum avs_cache_dtype dtype;
    int n_fields;
    struct avs_cache_field field[AVS_CACHE_MAXFIELDS];
    size_t field_off[AVS_CACHE_MAXFIELDS]; /* byte offset of each field inside a record */
    uint64_t record_bytes, data_offset; /* record_bytes: the fields + the 8-byte checksum */
    int64_t n_records;
    uint8_t *verified; /* [n_records] 1: checksum and NaN/Inf checked (atomic bytes) */
};

int avs_cache_open_append(struct avs_cache_writer **w, const char *path,
                          const struct avs_cache_field *fields, int n, enum avs_cache_dtype dtype,
                          struct avs_err *err);
/* One record from data[f] (numel of field f each); *offset = its byte offset. */
int avs_cache_append(struct avs_cache_writer *w, const float *const *data, int64_t *offset,
                     struct avs_err *err);
/* Records appended so far are on disk (fsync) when this returns 0. */
int avs_cache_sync(struct avs_cache_writer *w, struct avs_err *err);
int64_t avs_cache_writer_records(const struct avs_cache_writer *w);
/* Drop the records after the one at byte offset last_offset (-1: all): records a killed or
 * failed run appended but no index row names, so that a re-run writes the same bytes. */
int avs_cache_keep_through(struct avs_cache_writer *w, int64_t last_offset, struct avs_err *err);
void avs_cache_close_writer(struct avs_cache_writer **w);

int avs_cache_open(struct avs_cache **c, const char *path, struct avs_err *err);
/* The record at byte offset `offset`: its checksum matches and no field holds a NaN/Inf (once
 * per record and open; later calls return at once). Errors name the file, the record's offset,
 * the field and the fix (avs-features --rebuild --set <set>); callers add the video and second. */
int avs_cache_verify(const struct avs_cache *c, int64_t offset, struct avs_err *err);
/* Field f of the record at byte offset `offset` into dst (numel floats); verified first. */
int avs_cache_read(const struct avs_cache *c, int64_t offset, int f, float *dst, struct avs_err *err);
int avs_cache_find(const struct avs_cache *c, const char *name);
size_t avs_cache_field_numel(const struct avs_cache_field *f);
void avs_cache_close(struct avs_cache **c);
/* Map *c again, as the file is now, when byte `end` (one past the last record a reader needs)
 * lies past the mapped length: records another process appended after *c was opened. 0, or
 * -1 with err (*c unchanged). */
int avs_cache_cover(struct avs_cache **c, int64_t end, struct avs_err *err);

#endif
