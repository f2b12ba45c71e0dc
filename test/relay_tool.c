/* wgrp-relay [-b KB] [-t CONNECT_TIMEOUT_MS] [-w WORKERS] [-f ONLY_FROM]
 * [-u [-T UDP_TIMEOUT_S] [-M MAX_DATAGRAM]] [-v] LISTEN TARGET:
 * one relay listener on the library's relay workers (-w: how many; default
 * one per online CPU), for the relay tests and the relay-only benchmark;
 * -f: only that address's connections or datagrams; with -u a UDP one (-T:
 * its flows' timeout; -M: the largest datagram). LISTEN and TARGET are ip:port or [v6]:port. Prints "listening
 * on ADDR:PORT" once ready; on SIGUSR1 prints "stats active=N total=N
 * bytes_in=N bytes_out=N connect_failures=N refused=N", or with -u
 * "stats flows_active=N flows_total=N datagrams_in=N ..." (every counter of
 * struct udp_stats); exits 0 on SIGINT or SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "wgrp/log.h"
#include "wgrp/loop.h"
#include "wgrp/num.h"
#include "wgrp/relay_pool.h"

static struct relay_pool_listener *listener;
static struct relay_pool_udp *udp_listener;

static void print_udp_stats(void)
{
	const struct udp_stats *s = relay_pool_udp_stats(udp_listener);

	printf("stats flows_active=%llu flows_total=%llu datagrams_in=%llu datagrams_out=%llu "
	       "bytes_in=%llu bytes_out=%llu too_big=%llu flow_cap=%llu source_cap=%llu "
	       "no_fds=%llu not_from_peer=%llu send_failed=%llu flows_expired=%llu "
	       "flows_ended_by_icmp=%llu flows_failed=%llu\n",
	       (unsigned long long)s->flows_active, (unsigned long long)s->flows_total,
	       (unsigned long long)s->datagrams_in, (unsigned long long)s->datagrams_out,
	       (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
	       (unsigned long long)s->too_big, (unsigned long long)s->flow_cap,
	       (unsigned long long)s->source_cap, (unsigned long long)s->no_fds,
	       (unsigned long long)s->not_from_peer, (unsigned long long)s->send_failed,
	       (unsigned long long)s->flows_expired, (unsigned long long)s->flows_ended_by_icmp,
	       (unsigned long long)s->flows_failed);
}

static void on_stop(struct loop *l, int signo, void *data)
{
	(void)signo;
	(void)data;
	loop_stop(l);
}

static void on_stats(struct loop *l, int signo, void *data)
{
	const struct relay_stats *s;

	(void)l;
	(void)signo;
	(void)data;
	if (udp_listener) {
		print_udp_stats();
		fflush(stdout);
		return;
	}
	s = relay_pool_stats(listener);
	printf("stats active=%llu total=%llu bytes_in=%llu bytes_out=%llu connect_failures=%llu "
	       "refused=%llu\n",
	       (unsigned long long)s->active, (unsigned long long)s->total,
	       (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
	       (unsigned long long)s->connect_failures, (unsigned long long)s->refused);
	fflush(stdout);
}

/* ip:port or [ip6]:port, where port 0 (any) is allowed. */
static int parse_addr(const char *s, union sockaddr_inet *out)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	struct ip_addr ip;
	uint32_t port;
	size_t len = colon ? (size_t)(colon - s) : 0;

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']')
		s++, len -= 2;
	if (!colon || len >= sizeof(host) || num_parse_u32(colon + 1, 0, 65535, &port, NULL) < 0)
		goto bad;
	memcpy(host, s, len);
	host[len] = '\0';
	if (ip_addr_parse(&ip, host, NULL) < 0)
		goto bad;
	sockaddr_inet_set(out, &ip, (uint16_t)port);
	return 0;
bad:
	log_error("%s: expected ip:port or [ip6]:port", s);
	return -1;
}

int main(int argc, char **argv)
{
	struct relay_config cfg = { .pipe_kb = 64 };
	union sockaddr_inet bind_addr, target, bound;
	struct ip_addr only_from;
	bool udp = false, filtered = false;
	struct relay_pool *pool = NULL;
	struct loop *l = NULL;
	struct errbuf e;
	char addr[ADDR_HOSTPORT_STRLEN];
	bool verbose = false;
	int c, status = 1;

	while ((c = getopt(argc, argv, "b:t:w:uT:M:f:v")) != -1) {
		switch (c) {
		case 'b':
			if (num_parse_u32(optarg, 1, 1u << 20, &cfg.pipe_kb, NULL) < 0)
				goto usage;
			break;
		case 't':
			if (num_parse_u32(optarg, 1, 3600000, &cfg.connect_timeout_ms, NULL) < 0)
				goto usage;
			break;
		case 'w':
			if (num_parse_u32(optarg, 1, 1024, &cfg.workers, NULL) < 0)
				goto usage;
			break;
		case 'u':
			udp = true;
			break;
		case 'T':
			if (num_parse_u32(optarg, 1, 86400, &cfg.udp_timeout_s, NULL) < 0)
				goto usage;
			break;
		case 'M':
			if (num_parse_u32(optarg, 1, 65535, &cfg.udp_max_datagram, NULL) < 0)
				goto usage;
			break;
		case 'f':
			if (ip_addr_parse(&only_from, optarg, NULL) < 0)
				goto usage;
			filtered = true;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	log_init("wgrp-relay", verbose ? LOG_VERBOSE | LOG_TIMESTAMPS : LOG_TIMESTAMPS);
	if (parse_addr(argv[optind], &bind_addr) < 0 || parse_addr(argv[optind + 1], &target) < 0)
		return 1;
	if (loop_new(&l) < 0 || relay_pool_new(&pool, &cfg) < 0) {
		log_error("cannot set up the relay");
		goto out;
	}
	if ((udp ? relay_pool_listen_udp(&udp_listener, pool, &bind_addr, &target,
					 filtered ? &only_from : NULL, NULL, &e)
		 : relay_pool_listen(&listener, pool, &bind_addr, &target,
				     filtered ? &only_from : NULL, NULL, &e)) < 0) {
		log_error("%s", e.msg);
		goto out;
	}
	loop_add_signal(l, SIGINT, on_stop, NULL);
	loop_add_signal(l, SIGTERM, on_stop, NULL);
	loop_add_signal(l, SIGUSR1, on_stats, NULL);
	if (udp)
		relay_pool_udp_address(udp_listener, &bound);
	else
		relay_pool_address(listener, &bound);
	sockaddr_inet_format(&bound, addr, sizeof(addr));
	printf("listening on %s\n", addr);
	fflush(stdout);
	status = loop_run(l) < 0;
out:
	relay_pool_close(listener);
	relay_pool_udp_close(udp_listener);
	relay_pool_free(pool);
	loop_free(l);
	return status;
usage:
	fprintf(stderr,
		"usage: %s [-b KB] [-t CONNECT_TIMEOUT_MS] [-w WORKERS] [-f ONLY_FROM] "
		"[-u [-T UDP_TIMEOUT_S] [-M MAX_DATAGRAM]] [-v] LISTEN TARGET\n",
		argv[0]);
	return 2;
}
