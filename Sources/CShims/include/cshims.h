#ifndef ANNEXD_CSHIMS_H
#define ANNEXD_CSHIMS_H
#include <sys/types.h>
/// Starts asynchronous writeback of a file range (Linux sync_file_range with
/// SYNC_FILE_RANGE_WRITE); a no-op returning 0 elsewhere.
int annexd_start_writeback(int fd, off_t offset, off_t nbytes);
#endif

/// posix_spawnp of argv[0] (PATH lookup) with stdin/stdout/stderr set to the
/// given descriptors (-1: /dev/null for stdin, inherit for stdout/stderr), in
/// directory `cwd` (NULL: inherit), every other descriptor closed in the child.
/// `envp` NULL inherits the environment. Returns 0 and sets *pid, or an errno value.
int annexd_spawn(const char *const argv[], const char *const envp[], const char *cwd,
                 int in_fd, int out_fd, int err_fd, int *pid);

/// annexd_spawn, the child leading a process group of its own (pgid = its pid), so that it
/// and everything it starts can be killed at once with kill(-pid, sig).
int annexd_spawn_group(const char *const argv[], const char *const envp[], const char *cwd,
                       int in_fd, int out_fd, int err_fd, int *pid);

/// A pseudo-terminal of columns x rows: *master and *slave, both close-on-exec
/// (for running a program on a terminal). Returns 0, or an errno value.
int annexd_open_pty(int *master, int *slave, unsigned short columns, unsigned short rows);

/// mallopt(M_ARENA_MAX, arenas) and mallopt(M_MMAP_THRESHOLD, mmap_threshold): at most that
/// many malloc arenas for all threads, and blocks of mmap_threshold bytes or more always mapped
/// on their own (a fixed threshold turns off glibc's dynamic one). Returns 1 on success.
int annexd_tune_malloc(int arenas, int mmap_threshold);

/// pipe2(fds, O_CLOEXEC): a pipe whose ends no spawned child inherits.
int annexd_pipe_cloexec(int fds[2]);
