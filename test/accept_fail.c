/* A preload for hostile_test.sh: accept() and accept4() on the listening
 * sockets of TCP port $WGRP_ACCEPT_FAIL_PORT fail with ENOBUFS while the file
 * $WGRP_ACCEPT_FAIL_FILE exists, as they do when the kernel is short of
 * buffers. Everything else goes to libc. */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static bool failing(int fd)
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

	if (failing(fd)) {
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
