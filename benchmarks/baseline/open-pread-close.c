/*
 * The floor for a chain walk: for every image of a chain only open(2) + pread(2) of 4 KiB + close(2),
 * the least any header reader must do per layer. Prints the best and the median time per layer over
 * ROUNDS rounds of walking every file given (warm page cache: the first round is not counted).
 *
 * With --as-library it makes the system calls BackingChain.Core's FileImageSource makes per layer instead:
 * open with O_NONBLOCK (so a FIFO cannot block it), fstat(2) (the type: only regular files and block
 * devices are read; device and inode of what was opened, for loop detection), pread, close: the floor for
 * the library's choices. (The library takes no flock for reading.) walk-floor.c is the same pair of loops as
 * a shared library, which the benchmarks call in process.
 *
 *   cc -O2 -o open-pread-close open-pread-close.c && ./open-pread-close [--as-library] FILE...
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 201
#define MIN_FILES_PER_ROUND 2000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static char buffer[4096];
    static double per_layer[ROUNDS];
    int as_library = argc > 1 && strcmp(argv[1], "--as-library") == 0;
    if (as_library) {
        argv++;
        argc--;
    }
    int files = argc - 1;
    if (files < 1) {
        fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }

    /* Repeat short chains within a round so each round lasts long enough to time. */
    int repeats = (MIN_FILES_PER_ROUND + files - 1) / files;
    for (int round = -1; round < ROUNDS; round++) {
        double start = now_ns();
        for (int r = 0; r < repeats; r++) {
            for (int i = 1; i < argc; i++) {
                struct stat st;
                int fd = open(argv[i], O_RDONLY | O_CLOEXEC | (as_library ? O_NONBLOCK : 0));
                if (as_library && fd >= 0 && (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))) {
                    perror(argv[i]);
                    return 1;
                }
                if (fd < 0 || pread(fd, buffer, sizeof buffer, 0) < 0) {
                    perror(argv[i]);
                    return 1;
                }
                close(fd);
            }
        }
        if (round >= 0)
            per_layer[round] = (now_ns() - start) / ((double)repeats * files);
    }

    qsort(per_layer, ROUNDS, sizeof per_layer[0], compare);
    printf("%.0f %.0f\n", per_layer[0], per_layer[ROUNDS / 2]);
    return 0;
}
