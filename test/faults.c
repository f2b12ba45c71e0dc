/* A preload for hostile_test.sh: faults the kernel may return, on demand.
 * - accept() and accept4() on the listening sockets of TCP port
 *   $WGRP_ACCEPT_FAIL_PORT fail with ENOBUFS while the file
 *   $WGRP_ACCEPT_FAIL_FILE exists, as when the kernel is short of buffers;
 *   each failed call appends a byte to that file, for the test to count.
 * - splice() fails while the file $WGRP_SPLICE_FAIL_FILE exists: with EINTR
 *   every other call when the file says "EINTR" (a signal arrived), with
 *   EINVAL every call when it says "EINVAL" (this fd cannot splice).
 * Everything else goes to libc. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool accept_failing(int fd)
{
	const char *file = getenv("WGRP_ACCEPT_FAIL_FILE"), *port = getenv("WGRP_ACCEPT_FAIL_PORT");
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} a;
	socklen_t len = sizeof(a);

	if (!file || !port || access(file, F_OK) != 0 || getsockname(fd, &a.sa, &len) < 0)
		return false;
	if (a.sa.sa_family == AF_INET)
		return ntohs(a.in.sin_port) == atoi(port);
	return a.sa.sa_family == AF_INET6 && ntohs(a.in6.sin6_port) == atoi(port);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	static int (*real)(int, struct sockaddr *, socklen_t *, int);

	if (accept_failing(fd)) {
		int log = open(getenv("WGRP_ACCEPT_FAIL_FILE"), O_WRONLY | O_APPEND | O_CLOEXEC);

		if (log >= 0) {
			(void)!write(log, "x", 1);
			close(log);
		}
		errno = ENOBUFS;
		return -1;
	}
	if (!real)
		real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	return real(fd, addr, len, flags);
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return accept4(fd, addr, len, 0);
}

/* The errno splice() is to fail with now, or 0. */
static int splice_fault(void)
{
	static unsigned calls;
	const char *file = getenv("WGRP_SPLICE_FAIL_FILE");
	char what[16] = "";
	FILE *f;

	if (!file || !(f = fopen(file, "re")))
		return 0;
	if (!fgets(what, sizeof(what), f))
		what[0] = '\0';
	fclose(f);
	if (!strncmp(what, "EINVAL", 6))
		return EINVAL;
	if (!strncmp(what, "EINTR", 5) && calls++ % 2 == 0)
		return EINTR;
	return 0;
}

ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
	       unsigned int flags)
{
	static ssize_t (*real)(int, loff_t *, int, loff_t *, size_t, unsigned int);
	int err = splice_fault();

	if (err) {
		errno = err;
		return -1;
	}
	if (!real)
		real = (ssize_t(*)(int, loff_t *, int, loff_t *, size_t, unsigned int))dlsym(
			RTLD_NEXT, "splice");
	return real(fd_in, off_in, fd_out, off_out, len, flags);
}
