/* The next free tunnel address for rps add-client, in IPv4 and IPv6 subnets,
 * around the server's own, its peers' AllowedIPs and the addresses no host
 * may have; and --address taken, outside, or in a full subnet. */
#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "wgrp/peer_addr.h"

#define KEY "oLmhRrGJhVN8hYFUBdt4AGVB6viC/h4CViYBdOc5lHM="
#define PEER_A "\n[Peer]\nPublicKey = 3u2KXdrRG43ZlJaqAbhm0sBRqwGX3XbIiepCpOKrUAc=\nAllowedIPs = "
#define PEER_B "\n[Peer]\nPublicKey = yn71pK+wIxqimxrL4gH3uSnHRk3MnkAUx+fYPpJu73s=\nAllowedIPs = "

static struct {
	struct conf *c;
	struct ip_addr out[8];
	size_t n;
	struct errbuf e;
} t;

/* pick(ADDRESS, PEERS, WANTED...): the pick for a server with that Address
 * line and those peers; the result in t.out, t.n and t.e. */
static int pick_(const char *address, const char *peers, const char *const *wanted,
		 size_t n_wanted)
{
	struct diag_list diags = { 0 };
	struct ip_addr w[4];
	char *text;
	int r;

	conf_free(t.c);
	t.c = NULL;
	assert_true(asprintf(&text, "[Interface]\nPrivateKey = " KEY "\nAddress = %s\n%s", address,
			     peers) > 0);
	assert_int_equal(conf_parse(&t.c, "t.conf", text, strlen(text), &diags), 0);
	free(text);
	diag_list_clear(&diags);
	for (size_t i = 0; i < n_wanted; i++)
		assert_int_equal(ip_addr_parse(&w[i], wanted[i], NULL), 0);
	t.n = 0;
	t.e.msg[0] = '\0';
	r = peer_addr_pick(t.c, w, n_wanted, t.out, &t.n, &t.e);
	assert_true(r == 0 || t.e.msg[0]);
	return r;
}
#define pick(address, peers, ...)                                                           \
	pick_(address, peers, (const char *const[]){ NULL, __VA_ARGS__ } + 1,              \
	      N_ELEMS(((const char *const[]){ NULL, __VA_ARGS__ })) - 1)

/* picked(WANT...): t.out holds exactly these. */
static void picked_(const char *const *want, size_t n)
{
	char s[INET6_ADDRSTRLEN];

	assert_int_equal(t.n, n);
	for (size_t i = 0; i < n; i++) {
		ip_addr_format(&t.out[i], s, sizeof(s));
		assert_string_equal(s, want[i]);
	}
}
#define picked(...)                                                                         \
	picked_((const char *const[]){ __VA_ARGS__ }, N_ELEMS(((const char *const[]){ __VA_ARGS__ })))

static int teardown(void **state)
{
	(void)state;
	conf_free(t.c);
	t.c = NULL;
	return 0;
}

static void the_lowest_free_in_each_family(void **state)
{
	(void)state;
	assert_int_equal(pick("10.0.0.1/24, fd00::1/64", ""), 0);
	picked("10.0.0.2", "fd00::2");
	assert_int_equal(pick("10.0.0.1/24, fd00::1/64", PEER_A "10.0.0.2/32, fd00::2/128\n"), 0);
	picked("10.0.0.3", "fd00::3");
	/* Below the server's address, and in the Address order. */
	assert_int_equal(pick("fd00::9/64, 10.0.0.9/24", PEER_A "10.0.0.1/32\n"), 0);
	picked("fd00::1", "10.0.0.2");
	/* A gap left by a removed client is used again. */
	assert_int_equal(pick("10.0.0.1/24", PEER_A "10.0.0.2/32\n" PEER_B "10.0.0.4/32\n"), 0);
	picked("10.0.0.3");
}

static void around_peer_networks(void **state)
{
	(void)state;
	/* A peer routing a whole range is passed in one step. */
	assert_int_equal(pick("10.0.0.1/16", PEER_A "10.0.0.0/24\n" PEER_B "10.0.1.0/25\n"), 0);
	picked("10.0.1.128");
	assert_int_equal(pick("fd00::1/64", PEER_A "fd00::/65\n"), 0);
	picked("fd00::8000:0:0:0");
	/* A peer route wider than the subnet holds all of it. */
	assert_int_equal(pick("10.0.0.1/24", PEER_A "10.0.0.0/8\n"), -ENOSPC);
	assert_contains(t.e.msg, "no free address left in 10.0.0.1/24");
}

static void no_network_broadcast_or_anycast(void **state)
{
	(void)state;
	assert_int_equal(pick("10.0.0.2/30", PEER_A "10.0.0.1/32\n"), -ENOSPC);
	assert_string_equal(t.e.msg, "no free address left in 10.0.0.2/30: every one is the "
				     "server's or a peer's (give a larger subnet in the server's "
				     "Address, or remove a client)");
	/* Point-to-point /31 and /127: both addresses are hosts'. */
	assert_int_equal(pick("10.0.0.1/31, fd00::1/127", ""), 0);
	picked("10.0.0.0", "fd00::");
	/* Single-host prefixes are the server's alone. */
	assert_int_equal(pick("10.0.0.1/32, fd00::1/64", ""), 0);
	picked("fd00::2");
	assert_int_equal(pick("10.0.0.1/32", ""), -ENOSPC);
	assert_contains(t.e.msg, "no subnet to give clients addresses in");
}

static void the_subnet_full(void **state)
{
	char peers[4096] = "";

	(void)state;
	/* 10.0.0.1-6 are hosts of a /29; the server has one, five peers the rest. */
	for (int i = 2; i <= 6; i++)
		snprintf(peers + strlen(peers), sizeof(peers) - strlen(peers),
			 "\n[Peer]\nPublicKey = %.42s%c=\nAllowedIPs = 10.0.0.%d/32\n",
			 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AEIMQ"[i - 2], i);
	assert_int_equal(pick("10.0.0.1/29, fd00::1/64", peers), -ENOSPC);
	assert_contains(t.e.msg, "no free address left in 10.0.0.1/29");
}

static void wanted_addresses(void **state)
{
	(void)state;
	assert_int_equal(pick("10.0.0.1/24, fd00::1/64", PEER_A "10.0.0.2/32\n", "10.0.0.77"), 0);
	picked("10.0.0.77", "fd00::2");
	assert_int_equal(pick("10.0.0.1/24, fd00::1/64", "", "fd00::77", "10.0.0.9"), 0);
	picked("10.0.0.9", "fd00::77");
}

static void wanted_addresses_refused(void **state)
{
	static const char *const server = "10.0.0.1/24, fd00::1/64";
	static const char *const peers = PEER_A "10.0.0.2/32, 10.0.0.128/25\n";

	(void)state;
	assert_int_equal(pick(server, peers, "10.0.0.1"), -EINVAL);
	assert_string_equal(t.e.msg, "10.0.0.1 is the server's own address");
	assert_int_equal(pick(server, peers, "10.0.0.2"), -EINVAL);
	assert_string_equal(t.e.msg, "10.0.0.2 is taken: it is in the AllowedIPs of the [Peer] at line 5");
	assert_int_equal(pick(server, peers, "10.0.0.200"), -EINVAL);
	assert_contains(t.e.msg, "10.0.0.200 is taken");
	assert_int_equal(pick(server, peers, "10.0.1.1"), -EINVAL);
	assert_string_equal(t.e.msg, "10.0.1.1 is in none of the server's subnets (its Address)");
	assert_int_equal(pick(server, peers, "10.0.0.0"), -EINVAL);
	assert_string_equal(t.e.msg, "10.0.0.0 is the network address of 10.0.0.1/24, not a host's");
	assert_int_equal(pick("10.0.0.1/25", "", "10.0.0.127"), -EINVAL);
	assert_string_equal(t.e.msg, "10.0.0.127 is the broadcast address of 10.0.0.1/25, not a host's");
	assert_int_equal(pick(server, peers, "fd00::"), -EINVAL);
	assert_contains(t.e.msg, "subnet-router anycast");
	assert_int_equal(pick(server, peers, "10.0.0.5", "10.0.0.6"), -EINVAL);
	assert_string_equal(t.e.msg, "10.0.0.6: a second address in one subnet");
	/* Wanted or not, a full subnet is full. */
	assert_int_equal(pick("10.0.0.1/30, fd00::1/64", PEER_A "10.0.0.2/32\n", "fd00::5"),
			 -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(the_lowest_free_in_each_family, teardown),
		cmocka_unit_test_teardown(around_peer_networks, teardown),
		cmocka_unit_test_teardown(no_network_broadcast_or_anycast, teardown),
		cmocka_unit_test_teardown(the_subnet_full, teardown),
		cmocka_unit_test_teardown(wanted_addresses, teardown),
		cmocka_unit_test_teardown(wanted_addresses_refused, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
