/* wgrp-transparent [--wait] VISITOR SERVICE [VISITOR SERVICE ...]: connects to
 * each SERVICE (ip:port, [ip6]:port) from VISITOR, an address of no
 * interface here, with the library's transparent sockets and routing, as rpc
 * does for a `transparent` route. Over each connection it sends one line,
 * shuts its side, and prints what the service sent until its EOF:
 *
 *   reply SERVICE: TEXT   (each newline of TEXT as '|')
 *
 * With --wait it then prints "ready" and holds the routing until SIGTERM or
 * SIGINT. It removes the routing it added before it exits. Exit status: 0,
 * or 1 with the reason on stderr. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "wgrp/addr.h"
#include "wgrp/log.h"
#include "wgrp/transparent.h"

/* Connects visitor -> service transparently; prints the service's reply. */
static int talk(const struct hostport *visitor, const struct hostport *service)
{
	/* Bounds a test that fails: no connect or read waits longer. */
	const struct timeval timeout = { .tv_sec = 10 };
	char text[ADDR_HOSTPORT_STRLEN], line[ADDR_HOSTPORT_STRLEN + 16], reply[512];
	int family = service->addr.sa.sa_family, r = 0;
	size_t got = 0;
	ssize_t n;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	hostport_format(service, text, sizeof(text));
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) < 0) {
		r = -errno;
		goto out;
	}
	r = transparent_socket_prepare(fd, family);
	if (r < 0) {
		log_error("%s: preparing the socket: %s", text, strerror(-r));
		goto out;
	}
	if (bind(fd, &visitor->addr.sa, sockaddr_inet_len(&visitor->addr)) < 0 ||
	    connect(fd, &service->addr.sa, sockaddr_inet_len(&service->addr)) < 0) {
		r = -errno;
		log_error("%s: bind or connect: %s", text, strerror(-r));
		goto out;
	}
	hostport_format(visitor, line, sizeof(line));
	strcat(line, " says hello\n");
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line) || shutdown(fd, SHUT_WR) < 0) {
		r = -EIO;
		log_error("%s: write failed", text);
		goto out;
	}
	while (got < sizeof(reply) - 1 && (n = read(fd, reply + got, sizeof(reply) - 1 - got)) > 0)
		got += (size_t)n;
	reply[got] = '\0';
	for (char *p = reply; (p = strchr(p, '\n'));)
		*p = '|';
	printf("reply %s: %s\n", text, reply);
	fflush(stdout);
out:
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	struct transparent_routing *routing = NULL;
	struct hostport visitor, service;
	struct errbuf e;
	sigset_t stop;
	bool wait = argc > 1 && strcmp(argv[1], "--wait") == 0;
	int first = wait ? 2 : 1, sig, r;

	log_init("wgrp-transparent", 0);
	if (argc <= first || (argc - first) % 2) {
		fprintf(stderr, "usage: %s [--wait] VISITOR SERVICE [VISITOR SERVICE ...]\n", argv[0]);
		return 2;
	}
	/* Blocked before anything is added, so that a stop signal is always
	 * taken by sigwait() and the routing removed. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);

	r = transparent_routing_new(&routing, TRANSPARENT_TABLE, &e);
	for (int i = first; r == 0 && i < argc; i += 2) {
		r = hostport_parse(&visitor, argv[i], 0, &e);
		if (r == 0)
			r = hostport_parse(&service, argv[i + 1], 0, &e);
		if (r == 0 && (!visitor.is_ip || !service.is_ip))
			r = errbuf_set(&e, -EINVAL, "addresses must be IP literals");
		if (r < 0)
			break;
		r = transparent_probe(service.addr.sa.sa_family, &e);
		if (r == 0)
			r = transparent_routing_add_target(routing, &service.addr, IPPROTO_TCP, &e);
		if (r == 0 && talk(&visitor, &service) < 0)
			r = errbuf_set(&e, -EIO, "talking to %s failed", argv[i + 1]);
	}
	if (r < 0)
		log_error("%s", e.msg);
	if (r == 0 && wait) {
		puts("ready");
		fflush(stdout);
		sigwait(&stop, &sig);
	}
	if (transparent_routing_free(routing, &e) < 0) {
		log_error("%s", e.msg);
		r = -1;
	}
	return r < 0;
}
