/* tests/test_core_hash.c: core/hash.h, the content hash stored in the index and in configs:
 *   - the hash of known inputs equals a reference implementation of MurmurHash3_x64_128 with
 *     libavutil's default seed 0x725acc55daddca55 for h1 and h2 (values computed once with a
 *     Python transcription of Appleby's C++ code; h1 then h2, little-endian), so hashes
 *     already stored keep their meaning;
 *   - a stream fed in uneven pieces equals the whole; a file (bigger than the 1 MiB read
 *     buffer) equals its bytes; a missing file is an error naming it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/hash.h"
#include "tests/check.h"

static void hash_mem(const void *p, size_t n, char hex[33])
{
    struct avs_hash h;
    avs_hash_init(&h);
    avs_hash_update(&h, p, n);
    avs_hash_final(&h, hex);
}

static void check_known(void)
{
    static const struct { const char *s, *hex; } known[] = {
        {"", "f172e5acc891f8bf6981a829b5a83a3d"},
        {"a", "b5a5722e7e142a591660c8018dd76540"},
        {"hello", "6e02a178489146b3958ed7d675f784cf"},
        {"The quick brown fox jumps over the lazy dog", "77eef3ca5d6b43ea9fa737595f9a2954"},
    };
    char hex[33];
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        hash_mem(known[i].s, strlen(known[i].s), hex);
        CHECK(!strcmp(hex, known[i].hex), "murmur3(\"%s\") = %s, want %s", known[i].s, hex,
              known[i].hex);
    }
    /* 1283 bytes (0..255 five times, "xyz"): whole blocks and a tail, fed in uneven pieces */
    uint8_t buf[1283];
    for (int i = 0; i < 1280; i++)
        buf[i] = (uint8_t)i;
    memcpy(buf + 1280, "xyz", 3);
    struct avs_hash h;
    avs_hash_init(&h);
    for (size_t at = 0, step = 1; at < sizeof buf; at += step, step = step * 3 % 97 + 1)
        avs_hash_update(&h, buf + at, at + step > sizeof buf ? sizeof buf - at : step);
    avs_hash_final(&h, hex);
    CHECK(!strcmp(hex, "97798ba711da569312ea841cf9649cb7"), "streamed in pieces: %s", hex);
}

static void check_file(const char *tmp)
{
    struct avs_err err = {0};
    size_t n = 3 * (1 << 20) + 17;
    uint8_t *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 7 % 251);
    char *p = avs_fs_join(tmp, "big.bin"), hex[33] = "", mem[33];
    CHECK(avs_fs_write_atomic(p, big, n, &err) == 0, "%s", err.msg);
    CHECK(avs_hash_file(p, hex, &err) == 0, "%s", err.msg);
    hash_mem(big, n, mem);
    CHECK(!strcmp(hex, mem) && !strcmp(hex, "150af38a225993d1f1a40c7e7f0a8f60"),
          "file %s, bytes %s", hex, mem);
    char *missing = avs_fs_join(tmp, "none.bin"), keep[33] = "untouched";
    CHECK(avs_hash_file(missing, keep, &err) == -1 && strstr(err.msg, missing) &&
              !strcmp(keep, "untouched"),
          "missing file: %s", err.msg);
    free(big), free(p), free(missing);
}

int main(void)
{
    check_known();
    check_file(check_tmpdir());
    return check_summary("test_core_hash");
}
