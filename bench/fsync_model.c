// LD_PRELOAD shim for bench/persistence.sh (FSYNC_MODEL_US): fsync and
// fdatasync take FSYNC_MODEL_US microseconds and then do the real call, a
// model disk of fixed flush latency. With the data on tmpfs it takes the
// shared machine's disk out of the comparison and leaves how each server
// groups its writes per fsync.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void flush_latency(void) {
    const char *s = getenv("FSYNC_MODEL_US");
    long us = s ? atol(s) : 0;
    struct timespec t = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&t, 0);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    flush_latency();
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    flush_latency();
    return real(fd);
}
