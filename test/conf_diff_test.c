/* What a reload changes: peers matched by public key, each change named, the
 * secrets compared through their digests once wiped, and what only a restart
 * applies refused with the reason. */
#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "wgrp/conf_diff.h"

/* Each test gets a cmocka state; these keep theirs in t below. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

/* Made with wg genkey, wg pubkey and wg genpsk. */
#define SERVER_PRIVATE "oLmhRrGJhVN8hYFUBdt4AGVB6viC/h4CViYBdOc5lHM="
#define OTHER_PRIVATE "EJ5RUdyV9Pdo/kdNmwBsnmLw7OWbf1BAF8PyjbBRRWg="
#define KEY_A "3u2KXdrRG43ZlJaqAbhm0sBRqwGX3XbIiepCpOKrUAc="
#define KEY_B "yn71pK+wIxqimxrL4gH3uSnHRk3MnkAUx+fYPpJu73s="
#define KEY_C "QO2g3+rZM3zp5Hpr09Bdk9XO6IdnUzSZUCz9PDXQeHE="
#define KEY_D "XrLMSZL26xJnd/EvjUEitsyi9gHN4jBfgNdKH9wuuXs="
#define PSK "6FVASiVyiZn9k0tOZac9akUSKnWfPREx1wUYc0pEYIQ="
#define PSK2 "ZMYzqxt1iRD7WIc1q1E1RK8XSD3pa/Ltrz9AltB+r9c="

#define INTERFACE "[Interface]\nPrivateKey = " SERVER_PRIVATE "\nAddress = 10.0.0.1/24\n"
#define PEER(key, ips) "\n[Peer]\nPublicKey = " key "\nAllowedIPs = " ips "\n"

static struct {
	struct conf *old, *new;
	struct conf_secrets secrets;
	struct conf_diff diff;
	struct diag_list diags;
} t;

static int reset(void **state)
{
	conf_free(t.old);
	conf_free(t.new);
	conf_secrets_clear(&t.secrets);
	conf_diff_free(&t.diff);
	diag_list_clear(&t.diags);
	memset(&t, 0, sizeof(t));
	return 0;
}

static struct conf *parse(const char *text)
{
	struct conf *c;
	struct diag_list d = { 0 };

	if (conf_parse(&c, "wg0.conf", text, strlen(text), &d) < 0)
		fail_msg("%s", d.n ? d.items[0].msg : "parse failed");
	diag_list_clear(&d);
	return c;
}

/* As a daemon runs: old's secrets digested, then wiped; new read again. */
static int diff(const char *old, const char *new)
{
	t.old = parse(old);
	t.new = parse(new);
	assert_int_equal(conf_secrets_take(&t.secrets, t.old), 0);
	conf_wipe_private_key(t.old);
	return conf_diff(&t.diff, t.old, &t.secrets, t.new, "rps", &t.diags);
}

static const char *changes(size_t new_peer)
{
	static char buf[128];

	return conf_peer_changes_format(t.diff.changes[new_peer], buf, sizeof(buf));
}

static void the_same_config_changes_nothing(void **state)
{
	const char *c = INTERFACE "ListenPort = 51820\n" PEER(KEY_A, "10.0.0.2/32, fd00::2/128")
		"PresharedKey = " PSK "\nEndpoint = 192.0.2.1:51820\nPersistentKeepalive = 25\n";

	assert_int_equal(diff(c, c), 0);
	assert_true(conf_diff_empty(&t.diff));
	assert_int_equal(t.diff.old_index[0], 0);
	assert_int_equal(t.diff.new_index[0], 0);
	assert_int_equal(t.diags.n, 0);
}

static void peers_are_matched_by_public_key(void **state)
{
	/* B goes, D comes, A and C move and C changes. */
	assert_int_equal(diff(INTERFACE PEER(KEY_A, "10.0.0.2/32") PEER(KEY_B, "10.0.0.3/32")
				      PEER(KEY_C, "10.0.0.4/32"),
			      INTERFACE PEER(KEY_C, "10.0.0.4/32, 10.0.4.0/24") PEER(KEY_D, "10.0.0.5/32")
				      PEER(KEY_A, "10.0.0.2/32")),
			 0);
	assert_false(conf_diff_empty(&t.diff));
	assert_int_equal(t.diff.n_added, 1);
	assert_int_equal(t.diff.n_removed, 1);
	assert_int_equal(t.diff.n_changed, 1);
	assert_int_equal(t.diff.old_index[0], 2);
	assert_int_equal(t.diff.old_index[1], CONF_DIFF_NONE);
	assert_int_equal(t.diff.old_index[2], 0);
	assert_int_equal(t.diff.new_index[0], 2);
	assert_int_equal(t.diff.new_index[1], CONF_DIFF_NONE);
	assert_int_equal(t.diff.new_index[2], 0);
	assert_string_equal(changes(0), "AllowedIPs");
	assert_int_equal(t.diff.changes[1], 0);
	assert_int_equal(t.diff.changes[2], 0);
}

static void allowed_ips_compare_as_sets(void **state)
{
	assert_int_equal(diff(INTERFACE PEER(KEY_A, "10.0.0.2/32, fd00::2/128"),
			      INTERFACE PEER(KEY_A, "fd00::2/128, 10.0.0.2/32")),
			 0);
	assert_true(conf_diff_empty(&t.diff));
	reset(state);
	/* The same count, one prefix length changed. */
	assert_int_equal(diff(INTERFACE PEER(KEY_A, "10.0.0.2/32, fd00::2/128"),
			      INTERFACE PEER(KEY_A, "10.0.0.2/32, fd00::2/127")),
			 0);
	assert_string_equal(changes(0), "AllowedIPs");
}

/* The preshared keys are wiped in the running config: their digests tell. */
static void preshared_keys_compare_through_digests(void **state)
{
	const char *with = INTERFACE PEER(KEY_A, "10.0.0.2/32") "PresharedKey = " PSK "\n";
	const char *other = INTERFACE PEER(KEY_A, "10.0.0.2/32") "PresharedKey = " PSK2 "\n";
	const char *without = INTERFACE PEER(KEY_A, "10.0.0.2/32");

	assert_int_equal(diff(with, with), 0);
	assert_true(conf_diff_empty(&t.diff));
	reset(state);
	assert_int_equal(diff(with, other), 0);
	assert_string_equal(changes(0), "PresharedKey");
	reset(state);
	assert_int_equal(diff(with, without), 0);
	assert_string_equal(changes(0), "PresharedKey");
	reset(state);
	assert_int_equal(diff(without, with), 0);
	assert_string_equal(changes(0), "PresharedKey");
}

static void endpoints_and_keepalives(void **state)
{
	const char *plain = INTERFACE PEER(KEY_A, "10.0.0.2/32") "Endpoint = 192.0.2.1:51820\n";

	assert_int_equal(diff(plain, INTERFACE PEER(KEY_A, "10.0.0.2/32")
				     "Endpoint = 192.0.2.1:51821\nPersistentKeepalive = 25\n"),
			 0);
	assert_string_equal(changes(0), "PersistentKeepalive, Endpoint");
	reset(state);
	/* Left out: WireGuard keeps the endpoint it has; nothing to send. */
	assert_int_equal(diff(plain, INTERFACE PEER(KEY_A, "10.0.0.2/32")), 0);
	assert_true(conf_diff_empty(&t.diff));
	reset(state);
	assert_int_equal(diff(INTERFACE PEER(KEY_A, "10.0.0.2/32"), plain), 0);
	assert_string_equal(changes(0), "Endpoint");
	reset(state);
	assert_int_equal(diff(plain, INTERFACE PEER(KEY_A, "10.0.0.2/32")
				     "Endpoint = [2001:db8::1]:51820\n"),
			 0);
	assert_string_equal(changes(0), "Endpoint");
}

/* A peer's name and "# wg-rp:" lines are wg-rp's: changes, but not
 * WireGuard's. */
static void names_and_policies(void **state)
{
	assert_int_equal(diff(INTERFACE PEER(KEY_A, "10.0.0.2/32"),
			      INTERFACE "\n[Peer]\n# alice\nPublicKey = " KEY_A
					"\nAllowedIPs = 10.0.0.2/32\n"
					"# wg-rp: AllowPorts = 8000-8100\n# wg-rp: MaxMappings = 3\n"
					"# wg-rp: MaxConnsPerSource = 10\n"),
			 0);
	assert_int_equal(t.diff.n_changed, 1);
	assert_string_equal(changes(0), "name, AllowPorts, MaxMappings, MaxConnsPerSource");
	assert_int_equal(t.diff.changes[0] & CONF_PEER_WIREGUARD, 0);
	reset(state);
	assert_int_equal(diff(INTERFACE PEER(KEY_A, "10.0.0.2/32") "# wg-rp: AllowPorts = 8000\n",
			      INTERFACE PEER(KEY_A, "10.0.0.2/32") "# wg-rp: AllowPorts = 8001\n"),
			 0);
	assert_string_equal(changes(0), "AllowPorts");
}

static void interface_settings_that_change_live(void **state)
{
	assert_int_equal(diff(INTERFACE "ListenPort = 51820\n",
			      INTERFACE "ListenPort = 51821\nFwMark = 0x42\nMTU = 1380\n"),
			 0);
	assert_true(t.diff.listen_port);
	assert_true(t.diff.fwmark);
	assert_true(t.diff.mtu);
	assert_false(conf_diff_empty(&t.diff));
}

/* new's [Interface] refused against INTERFACE's, with one error: msg. */
static void refused(const char *new, const char *msg)
{
	assert_int_equal(diff(INTERFACE, new), -EPERM);
	assert_int_equal(t.diags.n_errors, 1);
	assert_string_equal(t.diags.items[0].msg, msg);
	assert_null(t.diff.old_index);
	reset(NULL);
}

static void private_key_and_addresses_are_refused(void **state)
{
	refused("[Interface]\nPrivateKey = " OTHER_PRIVATE "\nAddress = 10.0.0.1/24\n",
		"wg0.conf: PrivateKey changed: restart rps to apply it; nothing was reloaded");
	refused("[Interface]\nPrivateKey = " SERVER_PRIVATE "\nAddress = 10.0.0.1/16\n",
		"wg0.conf: Address changed: restart rps to apply it; nothing was reloaded");
	/* The order of the addresses is no change. */
	assert_int_equal(diff("[Interface]\nPrivateKey = " SERVER_PRIVATE
			      "\nAddress = 10.0.0.1/24, fd00::1/64\n",
			      "[Interface]\nPrivateKey = " SERVER_PRIVATE
			      "\nAddress = fd00::1/64, 10.0.0.1/24\n"),
			 0);
	reset(state);
	/* Both at once: both said. */
	assert_int_equal(diff(INTERFACE, "[Interface]\nPrivateKey = " OTHER_PRIVATE
					 "\nAddress = 10.0.0.9/24\n"),
			 -EPERM);
	assert_int_equal(t.diags.n_errors, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(the_same_config_changes_nothing, reset),
		cmocka_unit_test_teardown(peers_are_matched_by_public_key, reset),
		cmocka_unit_test_teardown(allowed_ips_compare_as_sets, reset),
		cmocka_unit_test_teardown(preshared_keys_compare_through_digests, reset),
		cmocka_unit_test_teardown(endpoints_and_keepalives, reset),
		cmocka_unit_test_teardown(names_and_policies, reset),
		cmocka_unit_test_teardown(interface_settings_that_change_live, reset),
		cmocka_unit_test_teardown(private_key_and_addresses_are_refused, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
