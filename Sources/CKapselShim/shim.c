#define _GNU_SOURCE
#include "CKapselShim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#endif

int kapsel_spawn(const char *path, char *const argv[], char *const envp[],
                 int stdin_fd, int stdout_fd, int stderr_fd,
                 int new_process_group, pid_t *pid_out) {
    return kapsel_spawn_with_extra_fd(path, argv, envp, stdin_fd, stdout_fd, stderr_fd, -1, new_process_group, pid_out);
}

int kapsel_spawn_with_extra_fd(const char *path, char *const argv[], char *const envp[],
                               int stdin_fd, int stdout_fd, int stderr_fd, int extra_fd,
                               int new_process_group, pid_t *pid_out) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) { posix_spawn_file_actions_destroy(&actions); return rc; }

    // dup2 clears close-on-exec on the target, so the three standard descriptors survive exec.
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
    if (rc == 0 && extra_fd >= 0) rc = posix_spawn_file_actions_adddup2(&actions, extra_fd, 3);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, extra_fd >= 0 ? 4 : 3);
#endif

    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    if (new_process_group) flags |= POSIX_SPAWN_SETPGROUP;
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0 && new_process_group) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0) rc = posix_spawnattr_setflags(&attr, flags);

    if (rc == 0) rc = posix_spawn(pid_out, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc;
}

int kapsel_pidfd_open(pid_t pid) {
#if defined(__linux__) && defined(SYS_pidfd_open)
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

int kapsel_pidfd_send_signal(int pidfd, int signal) {
#if defined(__linux__) && defined(SYS_pidfd_send_signal)
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
#else
    (void)pidfd; (void)signal;
    errno = ENOSYS;
    return -1;
#endif
}

int kapsel_set_parent_death_signal(int signal) {
#ifdef __linux__
    return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0);
#else
    (void)signal;
    return 0;
#endif
}

int kapsel_set_child_subreaper(int on) {
#ifdef __linux__
    return prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int kapsel_open_pseudo_terminal(int *controller, int *terminal) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) return -1;
    char *name = (grantpt(master) == 0 && unlockpt(master) == 0) ? ptsname(master) : NULL;
    int slave = name ? open(name, O_RDWR | O_NOCTTY) : -1;
    if (slave < 0) {
        int saved = errno;
        close(master);
        errno = saved;
        return -1;
    }
    *controller = master;
    *terminal = slave;
    return 0;
}

int kapsel_pipe_cloexec(int fds[2]) {
#ifdef __linux__
    return pipe2(fds, O_CLOEXEC);
#else
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

int kapsel_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags);
}

int kapsel_shared_memory_create(const char *debug_name, unsigned long long size) {
    int fd;
#if defined(__linux__) && defined(MFD_CLOEXEC)
    fd = memfd_create(debug_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
#else
    char name[64];
    for (int attempt = 0; attempt < 16; attempt++) {
        snprintf(name, sizeof name, "/kapsel-%d-%08x", (int)getpid(), (unsigned)arc4random());
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) { shm_unlink(name); fcntl(fd, F_SETFD, FD_CLOEXEC); break; }
        if (errno != EEXIST) break;
    }
    (void)debug_name;
#endif
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)size) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
#ifdef __linux__
    // Back every page now: faster than faulting pages in one by one, and a lack of
    // memory is an error here rather than a fault at first touch.
    if (size > 0 && fallocate(fd, 0, 0, (off_t)size) != 0 && errno != EOPNOTSUPP) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
#endif
    return fd;
}

int kapsel_seal_size(int fd) {
#if defined(__linux__) && defined(F_ADD_SEALS)
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
#else
    (void)fd;
    return 0;
#endif
}

int kapsel_is_shrink_sealed(int fd) {
#if defined(__linux__) && defined(F_GET_SEALS)
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0) return -1;
    return (seals & F_SEAL_SHRINK) ? 1 : 0;
#else
    (void)fd;
    return -1;
#endif
}

#define KAPSEL_MAX_FDS 250

long kapsel_send_with_fds(int socket, const void *data, unsigned long length, const int *fds, int fd_count) {
    if (fd_count < 0 || fd_count > KAPSEL_MAX_FDS) { errno = EINVAL; return -1; }
    struct iovec io = { .iov_base = (void *)data, .iov_len = length };
    union { char buffer[CMSG_SPACE(sizeof(int) * KAPSEL_MAX_FDS)]; struct cmsghdr align; } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    if (fd_count > 0) {
        memset(&control, 0, sizeof control);
        message.msg_control = control.buffer;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * fd_count);
    }
    long sent;
    do {
#ifdef MSG_NOSIGNAL
        sent = sendmsg(socket, &message, MSG_NOSIGNAL);
#else
        sent = sendmsg(socket, &message, 0);
#endif
    } while (sent < 0 && errno == EINTR);
    return sent;
}

long kapsel_receive_with_fds(int socket, void *data, unsigned long capacity, int *fds, int max_fds, int *fd_count, int dont_wait) {
    *fd_count = 0;
    struct iovec io = { .iov_base = data, .iov_len = capacity };
    union { char buffer[CMSG_SPACE(sizeof(int) * KAPSEL_MAX_FDS)]; struct cmsghdr align; } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof control.buffer;
    int flags = dont_wait ? MSG_DONTWAIT : 0;
#ifdef MSG_CMSG_CLOEXEC
    flags |= MSG_CMSG_CLOEXEC;
#endif
    long received;
    do {
        received = recvmsg(socket, &message, flags);
    } while (received < 0 && errno == EINTR);
    if (received < 0) return -1;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *incoming = (int *)CMSG_DATA(header);
        for (int index = 0; index < count; index++) {
            if (*fd_count < max_fds) {
                fds[(*fd_count)++] = incoming[index];
            } else {
                close(incoming[index]);
            }
        }
    }
    return received;
}

int kapsel_timer_create(void) {
#ifdef __linux__
    return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int kapsel_timer_set(int fd, unsigned long long nanoseconds) {
#ifdef __linux__
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    spec.it_value.tv_sec = (time_t)(nanoseconds / 1000000000ull);
    spec.it_value.tv_nsec = (long)(nanoseconds % 1000000000ull);
    return timerfd_settime(fd, 0, &spec, NULL);
#else
    (void)fd;
    (void)nanoseconds;
    errno = ENOSYS;
    return -1;
#endif
}

int kapsel_timer_wait(int fd) {
    unsigned long long expirations = 0;
    ssize_t got;
    do {
        got = read(fd, &expirations, sizeof expirations);
    } while (got < 0 && errno == EINTR);
    return got == (ssize_t)sizeof expirations ? 0 : -1;
}
