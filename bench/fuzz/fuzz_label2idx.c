/* bench/fuzz/fuzz_label2idx.c: AVSS label2idx.json, the class table (core/avss.c). */
#include "bench/fuzz/fuzz.h"
#include "core/avss.h"

int avs_fuzz_label2idx(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_label2idx(const uint8_t *data, size_t size, struct avs_err *err)
{
    const char *path = avs_fuzz_file("label2idx.json", data, size);
    char **names = NULL;
    int n = 0;
    if (avs_avss_read_classes(path, &names, &n, err))
        return -1;
    AVS_ASSERT(n >= 1 && n <= AVS_AVSS_MAX_CLASSES);
    for (int i = 0; i < AVS_AVSS_MAX_CLASSES; i++) {
        AVS_ASSERT(i >= n || names[i] != NULL);
        free(names[i]);
    }
    free(names);
    return 0;
}
AVS_FUZZ_ENTRY(avs_fuzz_label2idx)
