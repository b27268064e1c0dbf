/* tests/test_backend_guard.c: the backend registry and the guard backend (backend/guard.c):
 *  - the registry names cpu and guard, --device errors name the choices;
 *  - guard memory round-trips through upload/download, its ops give the CPU's bits;
 *  - reading guard memory from the host outside an op crashes (SIGSEGV), and so does handing a
 *    primitive host memory (abort): each in a child process.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/backend.h"
#include "tests/check.h"

static void registry(void)
{
    char names[128];
    CHECK(avs_backend_find("cpu") == avs_backend_cpu(), "cpu is registered");
    CHECK(avs_backend_find("guard") == avs_backend_guard(), "guard is registered");
    CHECK(avs_backend_at(0) == avs_backend_cpu(), "cpu is the first backend");
    int gpu = avs_backend_at(2) != NULL; /* a CUDA build on a machine with a GPU */
    CHECK(!strcmp(avs_backend_names(names, sizeof names), gpu ? "cpu, guard, cuda" : "cpu, guard"),
          "names: %s", names);
    struct avs_err err;
    CHECK(avs_backend_use("tpu", &err) < 0 && strstr(err.msg, "cpu, guard"),
          "an unknown device names the choices: %s", err.msg);
#ifdef AVS_USE_CUDA
    CHECK(gpu || (avs_backend_use("cuda:0", &err) < 0 && strstr(err.msg, "no CUDA device found")),
          "cuda on a machine without a GPU says so: %s", err.msg);
#else
    CHECK(avs_backend_use("cuda:0", &err) < 0 && strstr(err.msg, "CUDA=1"),
          "cuda without a CUDA build says how to get one: %s", err.msg);
#endif
    CHECK(avs_backend_use("cpu", &err) == 0 && avs_backend_set_precision("tf32", &err) < 0 &&
          strstr(err.msg, "fp32 only"), "tf32 on the cpu is refused: %s", err.msg);
    CHECK(avs_backend_set_precision("fp16", &err) < 0 && strstr(err.msg, "fp32, tf32 or bf16"),
          "an unknown precision names the choices: %s", err.msg);
    CHECK(avs_backend_set_precision("fp32", &err) == 0, "fp32 on the cpu");
    CHECK(avs_backend_use("guard", &err) == 0 && !strcmp(avs_ops()->name, "guard"), "use guard");
    avs_backend_set(avs_backend_cpu());
}

/* the same ops on cpu and guard memory: same bits */
static void same_bits(void)
{
    enum { M = 40, K = 70, N = 90 };
    float *a = avs_malloc(M * K * 4), *b = avs_malloc(K * N * 4), *c[2];
    for (int i = 0; i < M * K; i++)
        a[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    for (int i = 0; i < K * N; i++)
        b[i] = (float)((i * 53) % 97) / 48.0f - 1.0f;
    for (int k = 0; k < 2; k++) {
        avs_backend_set(k ? avs_backend_guard() : avs_backend_cpu());
        const struct avs_ops *op = avs_ops();
        float *da = avs_dev_from_host(a, M * K), *db = avs_dev_from_host(b, K * N);
        float *dc = avs_dev_alloc(M * N, "c");
        op->gemm(0, 0, M, N, K, 1.0f, da, K, db, N, 0.0f, dc, N);
        op->gelu_fwd(dc, dc, M * N);
        op->fill(da, 0.5f, 10);
        op->axpy(dc, 2.0f, da, 10);
        op->copy(dc + 20, dc, 10 * sizeof(float));
        c[k] = avs_host_from_dev(dc, M * N);
        avs_dev_free(&da), avs_dev_free(&db), avs_dev_free(&dc);
    }
    avs_backend_set(avs_backend_cpu());
    CHECK(!memcmp(c[0], c[1], M * N * 4), "guard and cpu give the same bits");
    CHECK(c[0][20] == c[0][0] && c[0][5] != 0.0f, "copy and axpy did their work");
    free(a), free(b), free(c[0]), free(c[1]);
}

/* run f in a child; the signal that ended it, 0 for a clean exit, -1 for another exit status
 * (a sanitizer reports a SIGSEGV and exits 1) */
static int child_signal(void (*f)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        f();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st) ? -1 : 0;
}

static volatile float sink;

static void host_reads_device(void)
{
    avs_backend_set(avs_backend_guard());
    float *d = avs_dev_alloc(16, "x");
    sink = d[3]; /* layer code touching tensor memory: must crash */
}

static void host_memory_to_op(void)
{
    avs_backend_set(avs_backend_guard());
    fclose(stderr); /* the abort message is expected */
    float *d = avs_dev_alloc(16, "x"), host[16] = {0};
    avs_ops()->relu_fwd(d, host, 16); /* a host buffer given to a primitive: must abort */
}

static void host_reads_arena(void)
{
    avs_backend_set(avs_backend_guard());
    struct avs_arena a;
    avs_arena_init(&a, 1000);
    float *x = avs_arena_take(&a, 100);
    avs_ops()->fill(x, 1.0f, 100);
    sink = x[50];
}

/* a large (huge-page) arena, read from the host after an op on it */
static void host_reads_big_arena(void)
{
    avs_backend_set(avs_backend_guard());
    struct avs_arena a;
    avs_arena_init(&a, 3 << 20);
    float *x = avs_arena_take(&a, 3 << 20);
    avs_ops()->fill(x, 1.0f, 3 << 20);
    sink = x[(3 << 20) - 1];
}

/* an op opens only the memory it is given: another region stays closed during it (the
 * callback of this test runs inside an op on a, and reads b) */
static float *other_region;
static void reads_other(void)
{
    sink = other_region[0];
}

static void op_reads_other_region(void)
{
    avs_backend_set(avs_backend_guard());
    float *a = avs_dev_alloc(16, "a");
    other_region = avs_dev_alloc(16, "b");
    avs_ops()->fill(a, 1.0f, 16);
    avs_backend_guard_run(a, reads_other);
}

static void legal_use(void)
{
    avs_backend_set(avs_backend_guard());
    struct avs_arena a;
    avs_arena_init(&a, 1000);
    float *x = avs_arena_take(&a, 100), h[100];
    avs_ops()->fill(x, 1.0f, 100);
    avs_dev_download(h, x, 100);
    avs_arena_free(&a);
    if (h[50] != 1.0f)
        abort();
}

int main(void)
{
    registry();
    same_bits();
    CHECK(child_signal(legal_use) == 0, "uploads, ops and downloads work on the guard");
    int segv = getenv("ASAN_OPTIONS") ? -1 : SIGSEGV; /* tests/run.sh sets it for sanitizer builds */
    int r = child_signal(host_reads_device);
    CHECK(r == SIGSEGV || r == segv, "a host read of guard memory crashes (%d)", r);
    r = child_signal(host_reads_arena);
    CHECK(r == SIGSEGV || r == segv, "a host read of a guard arena crashes (%d)", r);
    r = child_signal(host_reads_big_arena);
    CHECK(r == SIGSEGV || r == segv, "a host read of a large (huge-page) guard arena crashes (%d)", r);
    r = child_signal(op_reads_other_region);
    CHECK(r == SIGSEGV || r == segv, "an op reading memory it was not given crashes (%d)", r);
    CHECK(child_signal(host_memory_to_op) == SIGABRT, "host memory given to a primitive aborts");
    return check_summary("test_backend_guard");
}
