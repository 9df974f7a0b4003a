// Thin wrappers over the few system calls and macros Swift's Glibc module does not
// expose (or exposes only as variadic functions): spawning with a closed descriptor
// table, pidfd, the parent-death signal and close-on-exec pipes.
#ifndef CKAPSEL_SHIM_H
#define CKAPSEL_SHIM_H

#include <sys/types.h>

/// Starts `path` with `argv`/`envp`. The child's descriptors 0, 1 and 2 become
/// `stdin_fd`, `stdout_fd` and `stderr_fd`; every other descriptor is closed in the
/// child, so no daemon ever holds a sibling's lifeline. All signals get their
/// default disposition and an empty mask. With `new_process_group` the child leads
/// its own process group (a terminal's Ctrl-C goes to the host only).
/// Returns 0 and sets `*pid_out`, or an errno value.
int kapsel_spawn(const char *path, char *const argv[], char *const envp[],
                 int stdin_fd, int stdout_fd, int stderr_fd,
                 int new_process_group, pid_t *pid_out);

/// As `kapsel_spawn`, and `extra_fd` (if >= 0) becomes the child's descriptor 3.
int kapsel_spawn_with_extra_fd(const char *path, char *const argv[], char *const envp[],
                               int stdin_fd, int stdout_fd, int stderr_fd, int extra_fd,
                               int new_process_group, pid_t *pid_out);

/// An anonymous shared memory file of `size` bytes that disappears with its last
/// descriptor and mapping: `memfd_create` (close-on-exec, sealable) on Linux; elsewhere
/// `shm_open` of a random name, unlinked at once. On Linux every page is allocated at
/// once (`fallocate`), so a lack of memory fails here. Returns the descriptor or -1 with errno.
int kapsel_shared_memory_create(const char *debug_name, unsigned long long size);

/// Seals the size of a memfd (no shrink, no grow, no more seals), so a peer can never
/// shrink it under another's mapping. Returns 0 or -1 with errno (0 where seals do not exist).
int kapsel_seal_size(int fd);

/// Whether `fd` is sealed against shrinking (1), not (0), or unknown (-1).
int kapsel_is_shrink_sealed(int fd);

/// `sendmsg` of `length` bytes with up to 250 descriptors attached (SCM_RIGHTS),
/// retrying on EINTR. Returns bytes sent or -1 with errno.
long kapsel_send_with_fds(int socket, const void *data, unsigned long length, const int *fds, int fd_count);

/// `recvmsg` of up to `capacity` bytes and up to `max_fds` descriptors, received
/// close-on-exec; with `dont_wait` it never blocks (-1 with EAGAIN when nothing is
/// there). `*fd_count` is set to the number received. Returns bytes read, 0 at end of
/// stream, or -1 with errno. Descriptors beyond `max_fds` are closed.
long kapsel_receive_with_fds(int socket, void *data, unsigned long capacity, int *fds, int max_fds, int *fd_count, int dont_wait);

/// `pidfd_open(pid, 0)`: a descriptor that becomes readable when `pid` exits.
/// Returns -1 with errno set where the kernel lacks it.
int kapsel_pidfd_open(pid_t pid);

/// `pidfd_send_signal(pidfd, signal, NULL, 0)`: signals exactly the process the pidfd
/// refers to, never a process that reused its pid. Returns 0 or -1 with errno.
int kapsel_pidfd_send_signal(int pidfd, int signal);

/// `prctl(PR_SET_PDEATHSIG, signal)`. Returns 0 or -1 with errno (non-Linux: 0, no effect).
int kapsel_set_parent_death_signal(int signal);

/// Makes this process a child subreaper (`on` = 1), so that orphaned descendants are
/// re-parented to it instead of init, or stops being one (`on` = 0). Returns 0, or -1
/// with errno (ENOSYS where there is no such thing).
int kapsel_set_child_subreaper(int on);

/// Opens a pseudo-terminal pair (`posix_openpt`, `grantpt`, `unlockpt`, then the
/// terminal side by name). Returns 0, or -1 with errno.
int kapsel_open_pseudo_terminal(int *controller, int *terminal);

/// `pipe2(fds, O_CLOEXEC)`. Returns 0 or -1 with errno.
int kapsel_pipe_cloexec(int fds[2]);

/// Sets or clears `O_NONBLOCK` on `fd`. Returns 0 or -1 with errno.
int kapsel_set_nonblocking(int fd, int on);

/// A one-shot monotonic timer as a descriptor (`timerfd_create`, close-on-exec), for a
/// thread that sleeps until a deadline another thread sets. Returns the descriptor, or -1
/// with errno (ENOSYS where there is no such thing).
int kapsel_timer_create(void);

/// Arms `fd` to expire `nanoseconds` from now; 0 disarms it. Returns 0 or -1 with errno.
int kapsel_timer_set(int fd, unsigned long long nanoseconds);

/// Blocks until `fd` expires (retrying on EINTR). Returns 0, or -1 with errno.
int kapsel_timer_wait(int fd);

#endif
