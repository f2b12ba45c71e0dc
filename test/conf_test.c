/* The wg-quick config parser: what wg(8) and wg-quick(8) accept must give the
 * same values, and every mistake must be reported naming the file, the line and
 * the value, without ever showing a key. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "wgrp/conf.h"

/* Each test gets a cmocka state; these keep theirs in t below. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

/* Made once with wg genkey, wg pubkey and wg genpsk; their bytes from base64 -d. */
#define SERVER_PRIVATE "oLmhRrGJhVN8hYFUBdt4AGVB6viC/h4CViYBdOc5lHM="
#define SERVER_PUBLIC "QO2g3+rZM3zp5Hpr09Bdk9XO6IdnUzSZUCz9PDXQeHE="
#define CLIENT_PRIVATE "EJ5RUdyV9Pdo/kdNmwBsnmLw7OWbf1BAF8PyjbBRRWg="
#define CLIENT_PUBLIC "3u2KXdrRG43ZlJaqAbhm0sBRqwGX3XbIiepCpOKrUAc="
#define OTHER_PUBLIC "yn71pK+wIxqimxrL4gH3uSnHRk3MnkAUx+fYPpJu73s="
#define PSK "6FVASiVyiZn9k0tOZac9akUSKnWfPREx1wUYc0pEYIQ="
#define ZERO_KEY "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define SERVER_PRIVATE_HEX "a0b9a146b18985537c85815405db78006541eaf882fe1e0256260174e7399473"
#define SERVER_PUBLIC_HEX "40eda0dfead9337ce9e47a6bd3d05d93d5cee88767533499502cfd3c35d07871"
#define CLIENT_PRIVATE_HEX "109e5151dc95f4f768fe474d9b006c9e62f0ece59b7f504017c3f28db0514568"
#define CLIENT_PUBLIC_HEX "deed8a5ddad11b8dd99496aa01b866d2c051ab0197dd76c889ea42a4e2ab5007"
#define OTHER_PUBLIC_HEX "ca7ef5a4afb0231aa29b1acbe201f7b929c7464dcc9e4014c7e7d83e926eef7b"
#define PSK_HEX "e855404a25728999fd934b4e65a73d6a45122a759f3d1131d70518734a446084"
#define ZERO_HEX "0000000000000000000000000000000000000000000000000000000000000000"

static const char *const all_keys[] = { SERVER_PRIVATE, SERVER_PUBLIC, CLIENT_PRIVATE,
					CLIENT_PUBLIC,  OTHER_PUBLIC,  PSK };

/* Lines 1-3; a test's own line in [Interface] is line 4. */
#define INTERFACE "[Interface]\nPrivateKey = " SERVER_PRIVATE "\nAddress = 10.0.0.1/24\n"
/* Lines 4-6 after INTERFACE; a test's own line in this [Peer] is line 7. */
#define PEER "[Peer]\nPublicKey = " CLIENT_PUBLIC "\nAllowedIPs = 10.0.0.2/32\n"

#define README_SERVER                                                                        \
	"[Interface]\nPrivateKey = " SERVER_PRIVATE "\nAddress = 10.0.0.1/24, fd00::1/64\n"   \
	"ListenPort = 51820\nMTU = 65280\n\n[Peer]\nPublicKey = " CLIENT_PUBLIC "\n"          \
	"AllowedIPs = 10.0.0.2/32, fd00::2/128\n"
#define README_CLIENT                                                                        \
	"[Interface]\nPrivateKey = " CLIENT_PRIVATE "\nAddress = 10.0.0.2/32, fd00::2/128\n"  \
	"MTU = 65280\n\n[Peer]\nPublicKey = " SERVER_PUBLIC "\n"                              \
	"Endpoint = server.example.com:51820\nAllowedIPs = 10.0.0.0/24, fd00::/64\n"         \
	"PersistentKeepalive = 25\n"

/* The result of the last parse or load, freed by the next one and after each test. */
static struct {
	struct conf *c;
	struct diag_list diags;
} t;

static int reset(void **state)
{
	conf_free(t.c);
	t.c = NULL;
	diag_list_clear(&t.diags);
	return 0;
}

/* What holds after any parse or load: a config exactly when no error was
 * found, and no message showing a piece of a key. */
static int check_result(int r)
{
	assert_false(t.diags.oom);
	assert_true(r == 0 ? t.c && t.diags.n_errors == 0 : !t.c && t.diags.n_errors > 0);
	for (size_t i = 0; i < t.diags.n; i++)
		for (size_t k = 0; k < N_ELEMS(all_keys); k++)
			if (memmem(t.diags.items[i].msg, strlen(t.diags.items[i].msg), all_keys[k], 12))
				fail_msg("a message shows a key: %s", t.diags.items[i].msg);
	return r;
}

static int parse_len(const char *text, size_t len)
{
	reset(NULL);
	return check_result(conf_parse(&t.c, "wg-server.conf", text, len, &t.diags));
}

#define parse(text) parse_len(text, strlen(text))

static void fail_showing_diags(const char *what)
{
	for (size_t i = 0; i < t.diags.n; i++)
		print_message("  %s: %s\n", t.diags.items[i].level == DIAG_ERROR ? "error" : "warning",
			      t.diags.items[i].msg);
	fail_msg("%s", what);
}

static struct conf *parse_ok(const char *text)
{
	if (parse(text) != 0)
		fail_showing_diags(text);
	return t.c;
}

static void assert_diag(enum diag_level level, const char *msg)
{
	for (size_t i = 0; i < t.diags.n; i++)
		if (t.diags.items[i].level == level && !strcmp(t.diags.items[i].msg, msg))
			return;
	fail_showing_diags(msg);
}

static void assert_n_diags(size_t n)
{
	if (t.diags.n != n)
		fail_showing_diags("not the expected number of messages");
}

__attribute__((format(printf, 2, 3))) static void assert_only_diag(enum diag_level level,
								   const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	assert_diag(level, msg);
	assert_n_diags(1);
}

/* The text must fail to parse with exactly this one message. */
static void expect_error(const char *text, const char *msg)
{
	assert_int_equal(parse(text), -EINVAL);
	assert_only_diag(DIAG_ERROR, "%s", msg);
}

static const char *in_interface(const char *lines)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), INTERFACE "%s\n", lines);
	return buf;
}

static const char *in_peer(const char *lines)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), INTERFACE PEER "%s\n", lines);
	return buf;
}

/* in_interface or in_peer, and the number of the first line it adds. */
typedef const char *wrap_fn(const char *lines);
#define OWN_LINE(wrap) ((wrap) == in_peer ? 7u : 4u)

struct bad_value {
	const char *value, *msg;
};

/* Each "key = value" line must fail with "wg-server.conf:LINE: key: msg". */
static void expect_bad_values(wrap_fn *wrap, const char *key, const struct bad_value *bad, size_t n)
{
	char line[200];

	for (size_t i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "%s = %s", key, bad[i].value);
		assert_int_equal(parse(wrap(line)), -EINVAL);
		assert_only_diag(DIAG_ERROR, "wg-server.conf:%u: %s: %s", OWN_LINE(wrap), key,
				 bad[i].msg);
	}
}

static void assert_key(const uint8_t key[WG_KEY_LEN], const char *hex)
{
	char buf[2 * WG_KEY_LEN + 1];

	for (size_t i = 0; i < WG_KEY_LEN; i++)
		snprintf(buf + 2 * i, 3, "%02x", key[i]);
	assert_string_equal(buf, hex);
}

/* Checks n prefixes against the NULL-terminated list of their expected forms. */
static void assert_prefixes(const struct ip_prefix *p, size_t n, ...)
{
	char buf[ADDR_PREFIX_STRLEN];
	const char *want;
	size_t i = 0;
	va_list ap;

	va_start(ap, n);
	for (; (want = va_arg(ap, const char *)); i++) {
		assert_true(i < n);
		ip_prefix_format(&p[i], buf, sizeof(buf));
		assert_string_equal(buf, want);
	}
	va_end(ap);
	assert_int_equal(i, n);
}

static void assert_sockaddr(const union sockaddr_inet *sa, const char *ip, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN];
	bool v4 = sa->sa.sa_family == AF_INET;

	assert_true(v4 || sa->sa.sa_family == AF_INET6);
	assert_int_equal(ntohs(v4 ? sa->in.sin_port : sa->in6.sin6_port), port);
	inet_ntop(sa->sa.sa_family, v4 ? (const void *)&sa->in.sin_addr : &sa->in6.sin6_addr, buf,
		  sizeof(buf));
	assert_string_equal(buf, ip);
}

static void assert_endpoint(const struct conf_peer *peer, const char *host, uint16_t port, bool is_ip)
{
	assert_true(peer->has_endpoint);
	assert_string_equal(peer->endpoint.host, host);
	assert_int_equal(peer->endpoint.port, port);
	assert_int_equal(peer->endpoint.is_ip, is_ip);
	if (is_ip)
		assert_sockaddr(&peer->endpoint.addr, host, port);
}

/* The original's README sets MTU = 65280, which parses but is warned of. */
static void assert_only_mtu_warning(void)
{
	assert_n_diags(1);
	assert_int_equal(t.diags.items[0].level, DIAG_WARNING);
	if (!strstr(t.diags.items[0].msg, ": MTU: 65280 is more than a usual path carries: 1500 "
					  "(Ethernet) minus 80 of WireGuard overhead over IPv6 is "
					  "1420;"))
		fail_showing_diags("the MTU warning");
}

/* The parse of README_SERVER, however it is spelled. */
static void assert_readme_server(const struct conf *c)
{
	assert_key(c->private_key, SERVER_PRIVATE_HEX);
	assert_prefixes(c->addresses, c->n_addresses, "10.0.0.1/24", "fd00::1/64", NULL);
	assert_int_equal(c->listen_port, 51820);
	assert_int_equal(c->mtu, 65280);
	assert_int_equal(c->fwmark, 0);
	assert_int_equal(c->n_peers, 1);
	assert_key(c->peers[0].public_key, CLIENT_PUBLIC_HEX);
	assert_false(c->peers[0].has_preshared_key || c->peers[0].has_endpoint);
	assert_int_equal(c->peers[0].persistent_keepalive, 0);
	assert_prefixes(c->peers[0].allowed_ips, c->peers[0].n_allowed_ips, "10.0.0.2/32",
			"fd00::2/128", NULL);
	assert_only_mtu_warning();
}

static void readme_examples_parse(void **state)
{
	const struct conf *c;

	assert_readme_server(parse_ok(README_SERVER));
	assert_string_equal(t.c->name, "wg-server.conf");
	assert_int_equal(t.c->peers[0].line, 7);

	c = parse_ok(README_CLIENT);
	assert_key(c->private_key, CLIENT_PRIVATE_HEX);
	assert_prefixes(c->addresses, c->n_addresses, "10.0.0.2/32", "fd00::2/128", NULL);
	assert_int_equal(c->listen_port, 0);
	assert_int_equal(c->mtu, 65280);
	assert_int_equal(c->n_peers, 1);
	assert_key(c->peers[0].public_key, SERVER_PUBLIC_HEX);
	assert_endpoint(&c->peers[0], "server.example.com", 51820, false);
	assert_prefixes(c->peers[0].allowed_ips, c->peers[0].n_allowed_ips, "10.0.0.0/24",
			"fd00::/64", NULL);
	assert_int_equal(c->peers[0].persistent_keepalive, 25);
	assert_only_mtu_warning();
}

/* Comments anywhere, blank lines, blanks around '=' and commas, CRLF line ends,
 * and no newline at the end. */
static void comments_blanks_and_line_ends_are_ignored(void **state)
{
	static const char text[] = "# wg-server.conf\n\n  [Interface]   # the server\n"
				   "\tPrivateKey=" SERVER_PRIVATE "#no blank before\n"
				   "Address = 10.0.0.1/24 ,fd00::1/64# two\n"
				   "   # an indented comment\n \t \nListenPort\t=\t51820\n"
				   "MTU   =   65280   \n[ Peer ]#\nPublicKey =" CLIENT_PUBLIC "\n"
				   "AllowedIPs = 10.0.0.2/32 ,\t fd00::2/128   # a comment\n";
	char crlf[2 * sizeof(text)], *o = crlf;

	assert_readme_server(parse_ok(text));
	parse_len(text, sizeof(text) - 2);
	assert_readme_server(t.c);
	for (const char *s = text; *s; s++) {
		if (*s == '\n')
			*o++ = '\r';
		*o++ = *s;
	}
	*o = '\0';
	assert_readme_server(parse_ok(crlf));
	expect_error(INTERFACE "ListenPort = x\r\n", "wg-server.conf:4: ListenPort: \"x\" is not a number");
}

static void keys_and_sections_are_case_insensitive(void **state)
{
	assert_readme_server(parse_ok("[INTERFACE]\nprivatekey = " SERVER_PRIVATE "\n"
				      "ADDRESS = 10.0.0.1/24, fd00::1/64\nlistenport = 51820\n"
				      "Mtu = 65280\n[pEeR]\nPUBLICKEY = " CLIENT_PUBLIC "\n"
				      "allowedips = 10.0.0.2/32, fd00::2/128\n"));
	parse_ok(in_peer("presharedKEY = " PSK "\nendPOINT = 192.0.2.1:1\nPERSISTENTkeepalive = 5"));
	assert_key(t.c->peers->preshared_key, PSK_HEX);
	assert_endpoint(t.c->peers, "192.0.2.1", 1, true);
	assert_int_equal(t.c->peers->persistent_keepalive, 5);
	/* Messages spell keys as the documentation does. */
	assert_int_equal(parse_ok(in_interface("fwMARK = 7\ndns = 10.0.0.53"))->fwmark, 7);
	assert_only_diag(DIAG_WARNING, "wg-server.conf:5: DNS: wg-quick option, ignored");
}

static void address_takes_lists_and_repeated_lines(void **state)
{
	struct conf *c = parse_ok("[Interface]\nPrivateKey = " SERVER_PRIVATE "\n"
				  "Address = 10.0.0.1/24,fd00::1/64 , 192.168.1.1\nAddress = FD00:1::1\n");

	assert_prefixes(c->addresses, c->n_addresses, "10.0.0.1/24", "fd00::1/64",
			"192.168.1.1/32", "fd00:1::1/128", NULL);
	assert_int_equal(c->n_peers, 0);
	assert_n_diags(0);
}

static void address_errors_are_all_reported(void **state)
{
	assert_int_equal(parse("[Interface]\nPrivateKey = " SERVER_PRIVATE "\n"
			       "Address = 10.0.0.1/24, 10.0.0.300/24\nAddress = fd00::1/129\n"
			       "Address = 10.0.0.3/24,,fd00::3/64\nAddress = 10.0.0.1/32\nAddress =\n"),
			 -EINVAL);
	assert_diag(DIAG_ERROR, "wg-server.conf:3: Address: invalid address \"10.0.0.300/24\"");
	assert_diag(DIAG_ERROR, "wg-server.conf:4: Address: prefix length out of range (0-128) "
				"in \"fd00::1/129\"");
	assert_diag(DIAG_ERROR, "wg-server.conf:5: Address: empty entry in list");
	assert_diag(DIAG_ERROR, "wg-server.conf:6: Address: address \"10.0.0.1/32\" given twice");
	assert_diag(DIAG_ERROR, "wg-server.conf:7: Address: empty entry in list");
	assert_n_diags(5);
}

static void listen_port_is_0_to_65535(void **state)
{
	static const struct bad_value bad[] = {
		{ "65536", "\"65536\" is out of range (0-65535)" },
		{ "-1", "\"-1\" is not a number" },
		{ "", "empty value, expected a number" },
	};

	assert_int_equal(parse_ok(in_interface("ListenPort = 0"))->listen_port, 0);
	assert_int_equal(parse_ok(in_interface("ListenPort = 65535"))->listen_port, 65535);
	expect_bad_values(in_interface, "ListenPort", bad, N_ELEMS(bad));
}

static void mtu_is_68_to_65455(void **state)
{
	static const struct bad_value bad[] = {
		{ "67", "\"67\" is out of range (68-65455)" },
		{ "65456", "\"65456\" is out of range (68-65455)" },
	};

	assert_int_equal(parse_ok(INTERFACE)->mtu, 0);
	assert_int_equal(parse_ok(in_interface("MTU = 68"))->mtu, 68);
	assert_int_equal(parse_ok(in_interface("MTU = 65455"))->mtu, 65455);
	expect_bad_values(in_interface, "MTU", bad, N_ELEMS(bad));
}

static void fwmark_is_off_decimal_or_hex(void **state)
{
	static const struct {
		const char *line;
		uint32_t mark;
	} good[] = {
		{ "FwMark = off", 0 },		       { "FwMark = OFF", 0 },
		{ "FwMark = 51820", 51820 },	       { "FwMark = 4294967295", UINT32_MAX },
		{ "FwMark = 0XcaFE", 0xcafe },	       { "FwMark = 0xffffffff", UINT32_MAX },
	};
	static const struct bad_value bad[] = {
		{ "0x", "invalid mark \"0x\" (expected off, a number, or 0x...)" },
		{ "0x100000000", "invalid mark \"0x100000000\" (expected off, a number, or 0x...)" },
		{ "4294967296", "\"4294967296\" is out of range (0-4294967295)" },
		{ "", "empty value, expected a number" },
	};

	for (size_t i = 0; i < N_ELEMS(good); i++)
		assert_int_equal(parse_ok(in_interface(good[i].line))->fwmark, good[i].mark);
	expect_bad_values(in_interface, "FwMark", bad, N_ELEMS(bad));
}

static void wg_quick_keys_are_ignored_with_a_warning(void **state)
{
	static const char *const keys[] = { "DNS",     "Table",   "PreUp",    "PostUp",
					    "PostUp",  "PreDown", "PostDown", "SaveConfig" };
	char msg[100];

	parse_ok(in_interface("DNS = 10.0.0.53, example.com\nTable = off\nPreUp = echo up\n"
			      "PostUp = sysctl -w net.ipv4.ip_forward=1\n"
			      "PostUp = iptables -A FORWARD -i %i -j ACCEPT\nPreDown = true\n"
			      "PostDown = echo down\nSaveConfig = false\nMTU = 1420"));
	assert_int_equal(t.c->mtu, 1420);
	for (size_t i = 0; i < N_ELEMS(keys); i++) {
		snprintf(msg, sizeof(msg), "wg-server.conf:%zu: %s: wg-quick option, ignored", i + 4,
			 keys[i]);
		assert_diag(DIAG_WARNING, msg);
	}
	assert_n_diags(N_ELEMS(keys));
}

static void any_number_of_peers_each_with_its_values(void **state)
{
	const struct conf_peer *p = parse_ok(in_peer(
		"PresharedKey = " PSK "\nEndpoint = 192.0.2.1:51821\nPersistentKeepalive = 25\n"
		"[Peer]\nPublicKey = " OTHER_PUBLIC "\nAllowedIPs = 10.0.0.0/24\n"
		"[Peer]\nPublicKey = " ZERO_KEY "\nAllowedIPs = 0.0.0.0/0, ::/0\n"
		"PersistentKeepalive = off"))->peers;

	assert_int_equal(t.c->n_peers, 3);
	assert_int_equal(p[0].line, 4);
	assert_key(p[0].public_key, CLIENT_PUBLIC_HEX);
	assert_true(p[0].has_preshared_key);
	assert_key(p[0].preshared_key, PSK_HEX);
	assert_endpoint(&p[0], "192.0.2.1", 51821, true);
	assert_int_equal(p[0].persistent_keepalive, 25);
	assert_int_equal(p[1].line, 10);
	assert_key(p[1].public_key, OTHER_PUBLIC_HEX);
	assert_false(p[1].has_preshared_key || p[1].has_endpoint || p[1].persistent_keepalive);
	/* Overlapping networks of different lengths are fine: the longest wins. */
	assert_prefixes(p[1].allowed_ips, p[1].n_allowed_ips, "10.0.0.0/24", NULL);
	assert_int_equal(p[2].line, 13);
	assert_key(p[2].public_key, ZERO_HEX);
	assert_prefixes(p[2].allowed_ips, p[2].n_allowed_ips, "0.0.0.0/0", "::/0", NULL);
	assert_n_diags(0);
}

/* Lists on repeated lines, an empty one, host routes, and networks with host
 * bits set: stored masked, with a warning. */
static void allowed_ips_take_lists_host_routes_and_masked_networks(void **state)
{
	const struct conf_peer *p =
		parse_ok(in_peer("AllowedIPs = 10.0.0.3, fd00::2\nAllowedIPs =\n"
				 "AllowedIPs=10.0.1.5/24 ,fd00:1::1/64,::/0"))->peers;

	assert_prefixes(p->allowed_ips, p->n_allowed_ips, "10.0.0.2/32", "10.0.0.3/32",
			"fd00::2/128", "10.0.1.0/24", "fd00:1::/64", "::/0", NULL);
	assert_diag(DIAG_WARNING, "wg-server.conf:9: AllowedIPs: \"10.0.1.5/24\" has host bits "
				  "set; the device uses 10.0.1.0/24");
	assert_diag(DIAG_WARNING, "wg-server.conf:9: AllowedIPs: \"fd00:1::1/64\" has host bits "
				  "set; the device uses fd00:1::/64");
	assert_n_diags(2);
}

static void allowed_ips_errors_name_the_value(void **state)
{
	static const struct bad_value bad[] = {
		{ "10.0.0.300/32", "invalid address \"10.0.0.300/32\"" },
		{ "10.0.0.3/33", "prefix length out of range (0-32) in \"10.0.0.3/33\"" },
		{ "fd00::/129", "prefix length out of range (0-128) in \"fd00::/129\"" },
		{ "10.0.0.3/32,", "empty entry in list" },
	};

	expect_bad_values(in_peer, "AllowedIPs", bad, N_ELEMS(bad));
}

static void allowed_ips_network_given_twice_is_refused(void **state)
{
	assert_int_equal(parse(in_peer("AllowedIPs = 10.9.0.0/16\n[Peer]\nPublicKey = " OTHER_PUBLIC
				       "\nAllowedIPs = 10.0.0.2/32\nAllowedIPs = 10.9.1.1/16\n"
				       "AllowedIPs = fd00::9, fd00::9/128")),
			 -EINVAL);
	assert_diag(DIAG_ERROR, "wg-server.conf:10: AllowedIPs: 10.0.0.2/32 is already given at line 6");
	assert_diag(DIAG_ERROR, "wg-server.conf:11: AllowedIPs: 10.9.0.0/16 is already given at line 7");
	assert_diag(DIAG_ERROR, "wg-server.conf:12: AllowedIPs: fd00::9/128 is already given at line 12");
	assert_diag(DIAG_WARNING, "wg-server.conf:11: AllowedIPs: \"10.9.1.1/16\" has host bits "
				  "set; the device uses 10.9.0.0/16");
	assert_n_diags(4);
}

static void peer_without_allowed_ips_is_warned(void **state)
{
	static const char *const variants[] = { "", "AllowedIPs =", "AllowedIPs =  # none" };
	char text[512];

	for (size_t i = 0; i < N_ELEMS(variants); i++) {
		snprintf(text, sizeof(text), INTERFACE "[Peer]\nPublicKey = " OTHER_PUBLIC "\n%s\n",
			 variants[i]);
		assert_int_equal(parse_ok(text)->peers[0].n_allowed_ips, 0);
		assert_only_diag(DIAG_WARNING,
				 "wg-server.conf:4: [Peer] has no AllowedIPs; no traffic will reach it");
	}
}

static void endpoint_takes_host_port_forms(void **state)
{
	static const struct {
		const char *line, *host;
		uint16_t port;
		bool is_ip;
	} good[] = {
		{ "Endpoint = 192.0.2.1:51821", "192.0.2.1", 51821, true },
		{ "Endpoint = 192.0.2.1", "192.0.2.1", CONF_DEFAULT_ENDPOINT_PORT, true },
		{ "Endpoint = [2001:db8::1]:443", "2001:db8::1", 443, true },
		{ "Endpoint = [2001:db8::1]", "2001:db8::1", CONF_DEFAULT_ENDPOINT_PORT, true },
		{ "Endpoint = vpn.example.com:65535", "vpn.example.com", 65535, false },
		{ "Endpoint = vpn.example.com", "vpn.example.com", CONF_DEFAULT_ENDPOINT_PORT, false },
	};

	for (size_t i = 0; i < N_ELEMS(good); i++)
		assert_endpoint(parse_ok(in_peer(good[i].line))->peers, good[i].host, good[i].port,
				good[i].is_ip);
}

static void endpoint_errors_name_the_value(void **state)
{
	static const struct bad_value bad[] = {
		{ "2001:db8::1", "IPv6 address \"2001:db8::1\" needs brackets: [address]:port" },
		{ "", "empty address" },
		{ "192.0.2.1:0", "invalid port in \"192.0.2.1:0\": \"0\" is out of range (1-65535)" },
		{ "[2001:db8::1:443", "missing ']' in \"[2001:db8::1:443\"" },
		{ "bad_host!:1", "invalid host \"bad_host!\"" },
	};

	expect_bad_values(in_peer, "Endpoint", bad, N_ELEMS(bad));
}

static void persistent_keepalive_is_off_or_0_to_65535(void **state)
{
	static const struct bad_value bad[] = {
		{ "65536", "\"65536\" is out of range (0-65535)" },
		{ "25s", "\"25s\" is not a number" },
		{ "", "empty value, expected a number" },
	};

	assert_int_equal(parse_ok(in_peer("PersistentKeepalive = Off"))->peers->persistent_keepalive, 0);
	assert_int_equal(parse_ok(in_peer("PersistentKeepalive = 65535"))->peers->persistent_keepalive,
			 65535);
	expect_bad_values(in_peer, "PersistentKeepalive", bad, N_ELEMS(bad));
}

static void keys_must_be_canonical_base64_of_32_bytes(void **state)
{
#define BAD_LENGTH(n)                                                                        \
	"invalid key: expected 44 characters of base64 ending in '=' (as printed by wg genkey), " \
	"got " #n " characters"
	static const struct bad_value bad[] = {
		{ "", BAD_LENGTH(0) },
		{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", BAD_LENGTH(43) },
		{ PSK "=", BAD_LENGTH(45) },
		{ "AAAAAAAAA*AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "invalid key: character 10 is not base64" },
		/* The last symbol's low two bits would fall past the 32nd byte. */
		{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", "invalid key: not canonical base64" },
		{ "6FVASiVyiZn9k0tOZac9akUSKnWfPREx1wUYc0pEYIR=", "invalid key: not canonical base64" },
	};

	expect_bad_values(in_peer, "PresharedKey", bad, N_ELEMS(bad));
	assert_true(parse_ok(in_peer("PresharedKey=" ZERO_KEY))->peers->has_preshared_key);
	assert_key(t.c->peers->preshared_key, ZERO_HEX);
	/* A bad key given is not also reported missing. */
	expect_error("[Interface]\nPrivateKey =\nAddress = 10.0.0.1/24\n",
		     "wg-server.conf:2: PrivateKey: " BAD_LENGTH(0));
#undef BAD_LENGTH
}

/* With its '=' forgotten or mistyped, a key line must not show the key as a key name. */
static void keys_are_not_shown_in_messages_about_malformed_lines(void **state)
{
	static const struct bad_value bad[] = {
		{ "PrivateKey " CLIENT_PRIVATE, "unknown key (not shown: it may hold a key)" },
		{ "PrivateKey: " CLIENT_PRIVATE, "unknown key (not shown: it may hold a key)" },
		{ CLIENT_PRIVATE, "unknown key (not shown: it may hold a key)" },
		{ "PrivateKey EJ5RUdyV9Pdo/kdNmwBsnmLw7OWbf1BAF8PyjbBRRWg",
		  "expected \"Key = Value\", got (not shown: it may hold a key)" },
		{ "ListenPort 51820", "expected \"Key = Value\", got \"ListenPort 51820\"" },
	};

	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		assert_int_equal(parse(in_interface(bad[i].value)), -EINVAL);
		assert_only_diag(DIAG_ERROR, "wg-server.conf:4: %s", bad[i].msg);
	}
}

/* A key pasted as another key's value must not be quoted by that key's message. */
static void keys_given_as_other_values_are_not_shown(void **state)
{
#define HIDDEN "(not shown: it may hold a key)"
	static const struct {
		wrap_fn *wrap;
		const char *line, *msg;
	} bad[] = {
		{ in_interface, "Address = " SERVER_PRIVATE, "Address: invalid address " HIDDEN },
		{ in_interface, "Address = 10.0.0.9/24, " CLIENT_PRIVATE, "Address: invalid address " HIDDEN },
		{ in_interface, "ListenPort = " PSK, "ListenPort: " HIDDEN " is not a number" },
		{ in_interface, "MTU = " CLIENT_PRIVATE, "MTU: " HIDDEN " is not a number" },
		{ in_interface, "FwMark = " SERVER_PRIVATE, "FwMark: " HIDDEN " is not a number" },
		{ in_peer, "AllowedIPs = " PSK, "AllowedIPs: invalid address " HIDDEN },
		{ in_peer, "Endpoint = " CLIENT_PRIVATE, "Endpoint: invalid host " HIDDEN },
		{ in_peer, "Endpoint = EJ5RUdyV9Pdo0kdNmwBsnmLw7OWbf1BAF8PyjbBRRWg:x",
		  "Endpoint: invalid port in " HIDDEN ": \"x\" is not a number" },
		{ in_peer, "PersistentKeepalive = " PSK, "PersistentKeepalive: " HIDDEN " is not a number" },
	};
	char msg[200];

	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		snprintf(msg, sizeof(msg), "wg-server.conf:%u: %s", OWN_LINE(bad[i].wrap), bad[i].msg);
		expect_error(bad[i].wrap(bad[i].line), msg);
	}
	/* A value with no key in it is still quoted. */
	expect_error(in_peer("Endpoint = server.example.com:x"),
		     "wg-server.conf:7: Endpoint: invalid port in \"server.example.com:x\": "
		     "\"x\" is not a number");
#undef HIDDEN
}

/* 1420 fits a 1500-byte path under WireGuard over IPv6; more is warned of. */
static void mtu_above_the_usual_path_is_warned(void **state)
{
	assert_int_equal(parse_ok(in_interface("MTU = 1420"))->mtu, 1420);
	assert_n_diags(0);
	assert_int_equal(parse_ok(in_interface("MTU = 1421"))->mtu, 1421);
	assert_only_diag(DIAG_WARNING,
			 "wg-server.conf:4: MTU: 1421 is more than a usual path carries: 1500 "
			 "(Ethernet) minus 80 of WireGuard overhead over IPv6 is 1420; larger packets "
			 "fragment or are dropped (leave MTU out for 1420)");
	assert_int_equal(parse_ok(in_interface("MTU = 65280"))->mtu, 65280);
	assert_n_diags(1);
}

/* The daemons keep the config after the device has its keys: the keys go. */
static void wiping_the_private_key_leaves_the_rest(void **state)
{
	static const uint8_t zero[WG_KEY_LEN];
	struct conf *c = parse_ok(in_peer("PresharedKey = " PSK "\nEndpoint = 192.0.2.1:7"));

	conf_wipe_private_key(c);
	assert_memory_equal(c->private_key, zero, WG_KEY_LEN);
	assert_memory_equal(c->peers[0].preshared_key, zero, WG_KEY_LEN);
	assert_key(c->peers[0].public_key, CLIENT_PUBLIC_HEX);
	assert_true(c->peers[0].has_preshared_key);
	assert_endpoint(&c->peers[0], "192.0.2.1", 7, true);
	assert_prefixes(c->addresses, c->n_addresses, "10.0.0.1/24", NULL);
}

static void keys_outside_their_section_are_refused(void **state)
{
	expect_error(in_interface("PublicKey = " OTHER_PUBLIC),
		     "wg-server.conf:4: PublicKey: belongs in [Peer], not [Interface]");
	expect_error(in_interface("Adress = 10.0.0.2/24"), "wg-server.conf:4: unknown key \"Adress\"");
	expect_error(in_interface("= 10.0.0.2/24"), "wg-server.conf:4: unknown key \"\"");
	expect_error(in_peer("DNS = 10.0.0.53"), "wg-server.conf:7: DNS: belongs in [Interface], not [Peer]");
	assert_int_equal(parse("ListenPort = 1\n# comment\nAllowedIPs = 10.0.0.2/32\n" INTERFACE),
			 -EINVAL);
	assert_diag(DIAG_ERROR, "wg-server.conf:1: ListenPort: outside of any section (put it under "
				"[Interface])");
	assert_diag(DIAG_ERROR, "wg-server.conf:3: AllowedIPs: outside of any section (put it under "
				"[Peer])");
	assert_n_diags(2);
}

static void once_only_keys_given_twice_are_refused(void **state)
{
	static const struct {
		wrap_fn *wrap;
		const char *key, *value;
	} once[] = {
		{ in_interface, "ListenPort", "1" },	  { in_interface, "MTU", "1420" },
		{ in_interface, "FwMark", "1" },	  { in_peer, "PresharedKey", PSK },
		{ in_peer, "Endpoint", "192.0.2.1:1" }, { in_peer, "PersistentKeepalive", "1" },
	};
	char lines[200];

	for (size_t i = 0; i < N_ELEMS(once); i++) {
		snprintf(lines, sizeof(lines), "%s = %s\n%s = %s", once[i].key, once[i].value,
			 once[i].key, once[i].value);
		assert_int_equal(parse(once[i].wrap(lines)), -EINVAL);
		assert_only_diag(DIAG_ERROR,
				 "wg-server.conf:%u: %s: given twice in one section (first at line %u)",
				 OWN_LINE(once[i].wrap) + 1, once[i].key, OWN_LINE(once[i].wrap));
	}
	/* The base text has these two already. */
	expect_error(in_interface("PrivateKey = " CLIENT_PRIVATE),
		     "wg-server.conf:4: PrivateKey: given twice in one section (first at line 2)");
	expect_error(in_peer("PublicKey = " OTHER_PUBLIC),
		     "wg-server.conf:7: PublicKey: given twice in one section (first at line 5)");
}

static void section_headers_must_be_known(void **state)
{
	/* The keys under a bad header are not checked: its error covers them. */
	expect_error(INTERFACE "[Peers]\nPublicKey = " CLIENT_PUBLIC "\nFoo = bar\n",
		     "wg-server.conf:4: unknown section \"[Peers]\" (expected [Interface] or [Peer])");
	expect_error(INTERFACE "[Peer\n", "wg-server.conf:4: malformed section header \"[Peer\"");
	expect_error(INTERFACE "[Peer] x\n", "wg-server.conf:4: malformed section header \"[Peer] x\"");
	expect_error(INTERFACE PEER "[interface]\nPrivateKey = " CLIENT_PRIVATE "\n",
		     "wg-server.conf:7: second [Interface] section (the first is at line 1)");
}

static void interface_private_key_and_address_are_required(void **state)
{
	expect_error("[Interface]\nAddress = 10.0.0.1/24\n",
		     "wg-server.conf:1: [Interface] has no PrivateKey");
	expect_error("[Interface]\nPrivateKey = " SERVER_PRIVATE "\n",
		     "wg-server.conf:1: [Interface] has no Address");
	expect_error(PEER, "wg-server.conf: no [Interface] section");
	expect_error("", "wg-server.conf: no [Interface] section");
}

static void peer_public_key_is_required_and_unique(void **state)
{
	expect_error(INTERFACE "[Peer]\nAllowedIPs = 10.0.0.2/32\n",
		     "wg-server.conf:4: [Peer] has no PublicKey");
	expect_error(INTERFACE PEER "[Peer]\nPublicKey = " CLIENT_PUBLIC "\nAllowedIPs = 10.0.0.3/32\n",
		     "wg-server.conf:7: PublicKey: same peer as the [Peer] at line 4");
	/* Missing or invalid keys are not also reported as the same peer. */
	assert_int_equal(parse(INTERFACE "[Peer]\nAllowedIPs = 10.0.0.2/32\n"
					 "[Peer]\nPublicKey = " ZERO_KEY "\nAllowedIPs = 10.0.0.3/32\n"
					 "[Peer]\nPublicKey = x\nAllowedIPs = 10.0.0.4/32\n"
					 "[Peer]\nPublicKey =\nAllowedIPs = 10.0.0.5/32\n"),
			 -EINVAL);
	assert_diag(DIAG_ERROR, "wg-server.conf:4: [Peer] has no PublicKey");
	assert_diag(DIAG_ERROR, "wg-server.conf:10: PublicKey: invalid key: expected 44 characters "
				"of base64 ending in '=' (as printed by wg genkey), got 1 characters");
	assert_diag(DIAG_ERROR, "wg-server.conf:13: PublicKey: invalid key: expected 44 characters "
				"of base64 ending in '=' (as printed by wg genkey), got 0 characters");
	assert_n_diags(3);
}

static void nul_bytes_are_refused_and_parsing_goes_on(void **state)
{
	static const char text[] = INTERFACE "ListenPort = 1\0 2\nMTU = 1\n";

	assert_int_equal(parse_len(text, sizeof(text) - 1), -EINVAL);
	assert_diag(DIAG_ERROR, "wg-server.conf:4: contains a NUL byte");
	assert_diag(DIAG_ERROR, "wg-server.conf:5: MTU: \"1\" is out of range (68-65455)");
	assert_n_diags(2);
}

static void three_hundred_peers_with_four_allowed_ips_parse(void **state)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *text = NULL, key[2 * WG_KEY_LEN + 1], want[4][ADDR_PREFIX_STRLEN];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	fputs(INTERFACE, f);
	/* Peer i's key holds i in its first 12 bits: two base64 symbols. */
	for (unsigned i = 0; i < 300; i++)
		fprintf(f, "[Peer]\nPublicKey = %c%c%s\nAllowedIPs = 10.%u.%u.0/24, fd00:%x::/64\n"
			   "AllowedIPs = 192.168.%u.%u, fd01::%x/128\n",
			b64[i >> 6], b64[i & 63], &ZERO_KEY[2], i >> 8, i & 255, i + 1, i >> 8, i & 255,
			i + 1);
	assert_int_equal(fclose(f), 0);
	parse_ok(text);
	free(text);

	assert_int_equal(t.c->n_peers, 300);
	for (unsigned i = 0; i < 300; i++) {
		const struct conf_peer *p = &t.c->peers[i];

		snprintf(key, sizeof(key), "%03x%s", i, &ZERO_HEX[3]);
		assert_key(p->public_key, key);
		assert_int_equal(p->line, 4 + 4 * i);
		snprintf(want[0], sizeof(want[0]), "10.%u.%u.0/24", i >> 8, i & 255);
		snprintf(want[1], sizeof(want[1]), "fd00:%x::/64", i + 1);
		snprintf(want[2], sizeof(want[2]), "192.168.%u.%u/32", i >> 8, i & 255);
		snprintf(want[3], sizeof(want[3]), "fd01::%x/128", i + 1);
		assert_prefixes(p->allowed_ips, p->n_allowed_ips, want[0], want[1], want[2], want[3],
				NULL);
	}
	assert_n_diags(0);
}

/* conf_load() reads files in a private directory made for the test run. */
static char dir[] = "/tmp/conf_test.XXXXXX";
static char path[sizeof(dir) + 32];

static int make_dir(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	return rmdir(dir);
}

/* Loads text from a file of that mode, or the given path when text is NULL. */
static int load(const char *text, mode_t mode, const char *file)
{
	int fd;

	if (text) {
		file = path;
		snprintf(path, sizeof(path), "%s/wg0.conf", dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
		assert_int_equal(fchmod(fd, mode), 0);
		assert_int_equal(close(fd), 0);
	}
	reset(NULL);
	return check_result(conf_load(&t.c, file, &t.diags));
}

static void load_reads_files_and_warns_when_others_may_read_them(void **state)
{
	assert_int_equal(load(README_SERVER, 0600, NULL), 0);
	assert_readme_server(t.c);
	assert_string_equal(t.c->name, path);

	assert_int_equal(load(INTERFACE, 0644, NULL), 0);
	assert_only_diag(DIAG_WARNING, "%s: readable by group or others (mode 0644) but holds a "
				       "private key; chmod 600 it", path);

	assert_int_equal(load(INTERFACE "MTU = 1\n", 0600, NULL), -EINVAL);
	assert_only_diag(DIAG_ERROR, "%s:4: MTU: \"1\" is out of range (68-65455)", path);
	assert_int_equal(unlink(path), 0);
}

static void load_refuses_missing_directory_and_oversized_files(void **state)
{
	char missing[sizeof(path)];

	snprintf(missing, sizeof(missing), "%s/missing.conf", dir);
	assert_int_equal(load(NULL, 0, missing), -ENOENT);
	assert_only_diag(DIAG_ERROR, "%s: cannot open: No such file or directory", missing);

	assert_int_equal(load(NULL, 0, dir), -EINVAL);
	assert_only_diag(DIAG_ERROR, "%s: not a regular file", dir);

	load("", 0600, NULL);
	assert_int_equal(truncate(path, CONF_MAX_FILE_SIZE + 1), 0);
	assert_int_equal(load(NULL, 0, path), -EFBIG);
	assert_only_diag(DIAG_ERROR, "%s: too large (%u bytes, at most %u)", path,
			 CONF_MAX_FILE_SIZE + 1, CONF_MAX_FILE_SIZE);
	assert_int_equal(unlink(path), 0);
}

/* Only localhost: there is no DNS where the tests run. */
static void resolve_keeps_literals_and_finds_localhost(void **state)
{
	const union sockaddr_inet *sa;

	parse_ok(in_peer("Endpoint = localhost:5000\n[Peer]\nPublicKey = " OTHER_PUBLIC "\n"
			 "AllowedIPs = 10.0.0.3/32\nEndpoint = [2001:db8::1]:443\n"
			 "[Peer]\nPublicKey = " ZERO_KEY "\nAllowedIPs = 10.0.0.4/32"));
	assert_int_equal(conf_resolve_endpoints(t.c, &t.diags), 0);
	assert_n_diags(0);
	sa = &t.c->peers[0].endpoint.addr;
	assert_sockaddr(sa, sa->sa.sa_family == AF_INET ? "127.0.0.1" : "::1", 5000);
	assert_endpoint(&t.c->peers[1], "2001:db8::1", 443, true);
	assert_false(t.c->peers[2].has_endpoint);
}

static void peer_name_is_the_one_word_comment_under_the_header(void **state)
{
	struct conf *c = parse_ok(INTERFACE "[Peer]\n# alice\nPublicKey = " CLIENT_PUBLIC "\n"
					    "[Peer]\n#  bob's laptop\nPublicKey = " OTHER_PUBLIC "\n");

	assert_int_equal(c->n_peers, 2);
	assert_string_equal(c->peers[0].name, "alice");
	assert_null(c->peers[1].name); /* more than one word: a comment, not a name */
	c = parse_ok(INTERFACE "[Peer]\nPublicKey = " CLIENT_PUBLIC "\n# carol\n");
	assert_null(c->peers[0].name); /* not right under the header */
}

static void wgrp_peer_policy_lines_are_read(void **state)
{
	struct conf *c = parse_ok(in_peer("# wg-rp: AllowPorts = 8000-8100,9000\n"
					  "  #wg-rp:MaxMappings=3\n"
					  "# WG-RP: MaxConnsPerSource = 20"));
	const struct conf_peer *peer = &c->peers[0];

	assert_non_null(peer->allow_ports);
	assert_true(port_set_has(peer->allow_ports, 8000));
	assert_true(port_set_has(peer->allow_ports, 8100));
	assert_true(port_set_has(peer->allow_ports, 9000));
	assert_false(port_set_has(peer->allow_ports, 8101));
	assert_int_equal(peer->max_mappings, 3);
	assert_int_equal(peer->max_conns_per_source, 20);
	assert_n_diags(0);

	/* Absent: the daemon's options. */
	c = parse_ok(in_peer(""));
	assert_null(c->peers[0].allow_ports);
	assert_int_equal(c->peers[0].max_mappings, 0);
	assert_int_equal(c->peers[0].max_conns_per_source, 0);
}

static void wgrp_routes_are_checked_and_kept_in_order(void **state)
{
	struct conf *c = parse_ok(in_interface("# wg-rp: Route = 127.0.0.1:3000-3000\n"
					       "# wg-rp: Route = 127.0.0.1:53-5353/udp"));

	assert_int_equal(c->n_routes, 2);
	assert_string_equal(c->routes[0].spec, "127.0.0.1:3000-3000");
	assert_int_equal(c->routes[0].line, 4);
	assert_string_equal(c->routes[1].spec, "127.0.0.1:53-5353/udp");
	assert_int_equal(c->routes[1].line, 5);
}

static void wgrp_line_errors_name_the_line(void **state)
{
	expect_error(in_peer("# wg-rp: AllowPorts = 80-"),
		     "wg-server.conf:7: AllowPorts: invalid port list \"80-\": empty value, expected a number");
	expect_error(in_peer("# wg-rp: MaxMappings = 0"),
		     "wg-server.conf:7: MaxMappings: \"0\" is out of range (1-65535)");
	expect_error(in_peer("# wg-rp: MaxConnsPerSource = lots"),
		     "wg-server.conf:7: MaxConnsPerSource: \"lots\" is not a number");
	expect_error(in_peer("# wg-rp: MaxMappings = 2\n# wg-rp: MaxMappings = 3"),
		     "wg-server.conf:8: MaxMappings: given twice in one section (first at line 7)");
	expect_error(in_interface("# wg-rp: Route = 127.0.0.1:3000"),
		     "wg-server.conf:4: Route: invalid route \"127.0.0.1:3000\": expected "
		     "local_host:local_port-remote_port, e.g. 127.0.0.1:3000-3000");
	expect_error(in_interface("# wg-rp: MaxMappings = 2"),
		     "wg-server.conf:4: MaxMappings: belongs in [Peer], not [Interface]");
	expect_error(in_peer("# wg-rp: Rout = x"),
		     "wg-server.conf:7: unknown wg-rp key \"Rout\" (expected Route in [Interface]; "
		     "AllowPorts, MaxMappings or MaxConnsPerSource in [Peer])");
	expect_error(in_peer("# wg-rp: Endpoint = 192.0.2.1:51820"),
		     "wg-server.conf:7: Endpoint: a WireGuard key, not wg-rp's: write it without "
		     "\"# wg-rp:\"");
	expect_error(in_peer("MaxMappings = 2"),
		     "wg-server.conf:7: MaxMappings: wg-rp's own key, which wg-quick does not know: "
		     "write it as \"# wg-rp: MaxMappings = ...\"");
	/* Other comments stay comments. */
	parse_ok(in_peer("# wg-rp allows this\n#wg-rp\n# see wg-rp: the docs"));
}

#define TEST(f) cmocka_unit_test_teardown(f, reset)

static void finds_the_peer_of_an_address_by_the_longest_prefix(void **state)
{
	struct conf *c = parse_ok(INTERFACE "[Peer]\nPublicKey = " CLIENT_PUBLIC "\n"
				  "AllowedIPs = 10.0.0.0/24, fd00::2/128\n"
				  "[Peer]\nPublicKey = " OTHER_PUBLIC "\nAllowedIPs = 10.0.0.128/25\n");
	struct ip_addr a;

	assert_int_equal(ip_addr_parse(&a, "10.0.0.2", NULL), 0);
	assert_int_equal(conf_peer_of(c, &a), 0);
	assert_int_equal(ip_addr_parse(&a, "fd00::2", NULL), 0);
	assert_int_equal(conf_peer_of(c, &a), 0);
	assert_int_equal(ip_addr_parse(&a, "10.0.0.200", NULL), 0);
	assert_int_equal(conf_peer_of(c, &a), 1);
	assert_int_equal(ip_addr_parse(&a, "10.0.1.1", NULL), 0);
	assert_int_equal(conf_peer_of(c, &a), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(readme_examples_parse),
		TEST(finds_the_peer_of_an_address_by_the_longest_prefix),
		TEST(comments_blanks_and_line_ends_are_ignored),
		TEST(keys_and_sections_are_case_insensitive),
		TEST(address_takes_lists_and_repeated_lines),
		TEST(address_errors_are_all_reported),
		TEST(listen_port_is_0_to_65535),
		TEST(mtu_is_68_to_65455),
		TEST(fwmark_is_off_decimal_or_hex),
		TEST(wg_quick_keys_are_ignored_with_a_warning),
		TEST(any_number_of_peers_each_with_its_values),
		TEST(allowed_ips_take_lists_host_routes_and_masked_networks),
		TEST(allowed_ips_errors_name_the_value),
		TEST(allowed_ips_network_given_twice_is_refused),
		TEST(peer_without_allowed_ips_is_warned),
		TEST(endpoint_takes_host_port_forms),
		TEST(endpoint_errors_name_the_value),
		TEST(persistent_keepalive_is_off_or_0_to_65535),
		TEST(keys_must_be_canonical_base64_of_32_bytes),
		TEST(keys_are_not_shown_in_messages_about_malformed_lines),
		TEST(keys_given_as_other_values_are_not_shown),
		TEST(mtu_above_the_usual_path_is_warned),
		TEST(wiping_the_private_key_leaves_the_rest),
		TEST(keys_outside_their_section_are_refused),
		TEST(once_only_keys_given_twice_are_refused),
		TEST(section_headers_must_be_known),
		TEST(interface_private_key_and_address_are_required),
		TEST(peer_public_key_is_required_and_unique),
		TEST(nul_bytes_are_refused_and_parsing_goes_on),
		TEST(three_hundred_peers_with_four_allowed_ips_parse),
		TEST(load_reads_files_and_warns_when_others_may_read_them),
		TEST(load_refuses_missing_directory_and_oversized_files),
		TEST(resolve_keeps_literals_and_finds_localhost),
		TEST(peer_name_is_the_one_word_comment_under_the_header),
		TEST(wgrp_peer_policy_lines_are_read),
		TEST(wgrp_routes_are_checked_and_kept_in_order),
		TEST(wgrp_line_errors_name_the_line),
	};

	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
