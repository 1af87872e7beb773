/*
 * The C floor of a chain walk, as a shared library the benchmarks call in the same process and the same run as the
 * walk they compare with it (ChainWalkFileBenchmarks builds it at setup with `cc -O2 -shared -fPIC`).
 *
 * walk_floor: for every path only open(2) + pread(2) of 4 KiB + close(2), the least any header reader must do.
 * walk_floor_as_library: the system calls BackingChain.Core's walk makes per layer instead: open with O_NONBLOCK (a
 * FIFO cannot block it), from the second layer in one directory on by the last component only from a descriptor
 * of the directory; statx of the descriptor (the type: only regular files and block devices are read; device and
 * inode of what was opened, for loop detection; size and blocks); pread; the descriptors are closed 32 at a time
 * with one close_range(2), as the walk's DeferredCloses does.
 *
 * Both return the bytes read in total, or -1 when a call fails.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

long walk_floor(const char *const *paths, int count, unsigned char *buffer)
{
    long total = 0;
    for (int i = 0; i < count; i++) {
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        ssize_t read = pread(fd, buffer, 4096, 0);
        close(fd);
        if (read < 0)
            return -1;
        total += read;
    }
    return total;
}

long walk_floor_as_library(const char *const *paths, int count, unsigned char *buffer)
{
    long total = 0;
    int held[32], count_held = 0, dir = -1;
    for (int i = 0; i < count; i++) {
        struct statx st;
        /* From the second path in the same directory on, only the last component is looked up, from an O_PATH
         * descriptor of the directory (the walk's DirectoryOf). */
        const char *slash = strrchr(paths[i], '/');
        size_t prefix = slash ? (size_t)(slash - paths[i]) : 0;
        int same = i > 0 && slash && strncmp(paths[i], paths[i - 1], prefix + 1) == 0 && strrchr(paths[i - 1], '/') == paths[i - 1] + prefix;
        if (!same && dir >= 0) {
            close(dir);
            dir = -1;
        }
        if (same && dir < 0) {
            char directory[4096];
            memcpy(directory, paths[i], prefix);
            directory[prefix] = 0;
            dir = open(prefix ? directory : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        }
        int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
        int fd = dir >= 0 ? openat(dir, slash + 1, flags) : open(paths[i], flags);
        if (fd < 0)
            return -1;
        if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &st) != 0 || !(S_ISREG(st.stx_mode) || S_ISBLK(st.stx_mode))) {
            close(fd);
            return -1;
        }
        ssize_t read = pread(fd, buffer, 4096, 0);
        if (read < 0)
            return -1;
        total += read;
        held[count_held++] = fd;
        if (count_held == 32 || i == count - 1) {
            /* One call per run of numbers that follow one another, as the walk's DeferredCloses does (the
             * numbers come in ascending order here); never a number in between, which another thread of the
             * process may have opened. */
            for (int start = 0, end; start < count_held; start = end + 1) {
                for (end = start; end + 1 < count_held && held[end + 1] == held[end] + 1; end++)
                    ;
                if (end > start)
                    syscall(SYS_close_range, held[start], held[end], 0);
                else
                    close(held[start]);
            }
            count_held = 0;
        }
    }
    if (dir >= 0)
        close(dir);
    return total;
}
