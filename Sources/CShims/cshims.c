#define _GNU_SOURCE
#include <fcntl.h>
#include "cshims.h"

int annexd_start_writeback(int fd, off_t offset, off_t nbytes) {
#ifdef __linux__
    return sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd; (void)offset; (void)nbytes;
    return 0;
#endif
}

#include <spawn.h>
#include <signal.h>
#include <unistd.h>
#include <errno.h>
extern char **environ;

static int spawn_with(const char *const argv[], const char *const envp[], const char *cwd,
                      int in_fd, int out_fd, int err_fd, int *pid, int new_group) {
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) return rc;
    if (in_fd >= 0) rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    else rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0 && out_fd >= 0) rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (rc == 0 && err_fd >= 0) rc = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
#ifdef __linux__
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (rc == 0 && cwd) rc = posix_spawn_file_actions_addchdir_np(&fa, cwd);
#endif
    /* The child starts with no blocked signals and default dispositions: a
       thread's mask (Dispatch, Swift concurrency) or SIGPIPE ignored here must
       not leak into tor or git. */
    posix_spawnattr_t attr;
    if (rc == 0) rc = posix_spawnattr_init(&attr);
    if (rc == 0) {
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
        if (new_group) {
            posix_spawnattr_setpgroup(&attr, 0);
            flags |= POSIX_SPAWN_SETPGROUP;
        }
        posix_spawnattr_setflags(&attr, flags);
        pid_t p;
        rc = posix_spawnp(&p, argv[0], &fa, &attr, (char *const *)argv,
                          envp ? (char *const *)envp : environ);
        if (rc == 0) *pid = p;
        posix_spawnattr_destroy(&attr);
    }
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int annexd_spawn(const char *const argv[], const char *const envp[], const char *cwd,
                 int in_fd, int out_fd, int err_fd, int *pid) {
    return spawn_with(argv, envp, cwd, in_fd, out_fd, err_fd, pid, 0);
}

int annexd_spawn_group(const char *const argv[], const char *const envp[], const char *cwd,
                       int in_fd, int out_fd, int err_fd, int *pid) {
    return spawn_with(argv, envp, cwd, in_fd, out_fd, err_fd, pid, 1);
}

int annexd_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>

int annexd_open_pty(int *master, int *slave, unsigned short columns, unsigned short rows) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return errno;
    char name[128];
    if (grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, name, sizeof name) != 0) {
        int e = errno;
        close(m);
        return e;
    }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        int e = errno;
        close(m);
        return e;
    }
    struct winsize ws = { .ws_row = rows, .ws_col = columns };
    ioctl(s, TIOCSWINSZ, &ws);
    *master = m;
    *slave = s;
    return 0;
}

#include <malloc.h>

int annexd_tune_malloc(int arenas, int mmap_threshold) {
    return mallopt(M_ARENA_MAX, arenas) && mallopt(M_MMAP_THRESHOLD, mmap_threshold);
}
