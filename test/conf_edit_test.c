/* The text edits of rps add-client and remove-client: a [Peer] appended as
 * the docs show it, under the name conf_parse() reads back; one removed by
 * the line of its header with every other byte kept. */
#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "wgrp/conf.h"
#include "wgrp/conf_edit.h"

#define SERVER                                                                               \
	"[Interface]\nPrivateKey = oLmhRrGJhVN8hYFUBdt4AGVB6viC/h4CViYBdOc5lHM=\n"           \
	"Address = 10.0.0.1/24, fd00::1/64\nListenPort = 51820\n"
#define BOB                                                                                  \
	"\n[Peer]\n# bob\nPublicKey = 3u2KXdrRG43ZlJaqAbhm0sBRqwGX3XbIiepCpOKrUAc=\n"         \
	"AllowedIPs = 10.0.0.2/32, fd00::2/128\n"
/* A hand-written peer: comments, CRLF, a setting line, odd spacing. */
#define CAROL                                                                                \
	"\n# Carol's laptop, added by hand\n  [ peer ]  # the header may have a comment\r\n"  \
	"#carol\r\nPublicKey = yn71pK+wIxqimxrL4gH3uSnHRk3MnkAUx+fYPpJu73s=\r\n"              \
	"# wg-rp: AllowPorts = 8000-8100\nAllowedIPs = 10.0.0.3/32\n"

static const uint8_t alice_key[WG_KEY_LEN] = { 1, 2, 3 };

static void alice_addrs(struct ip_addr a[2])
{
	assert_int_equal(ip_addr_parse(&a[0], "10.0.0.4", NULL), 0);
	assert_int_equal(ip_addr_parse(&a[1], "fd00::4", NULL), 0);
}

static void names_are_short_and_plain(void **state)
{
	(void)state;
	assert_true(conf_edit_name_valid("alice"));
	assert_true(conf_edit_name_valid("web-1.prod_eu"));
	assert_true(conf_edit_name_valid("abcdefghijklmnopqrstuvwxyz012345"));
	assert_false(conf_edit_name_valid("abcdefghijklmnopqrstuvwxyz0123456"));
	assert_false(conf_edit_name_valid(""));
	assert_false(conf_edit_name_valid("a b"));
	assert_false(conf_edit_name_valid("a#b"));
	assert_false(conf_edit_name_valid("ali\xc3\xa9"));
	assert_false(conf_edit_name_valid("a\n[Peer]"));
}

static void appends_a_peer_after_a_blank_line(void **state)
{
	static const char want[] = SERVER BOB
		"\n[Peer]\n# alice\nPublicKey = AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
		"AllowedIPs = 10.0.0.4/32, fd00::4/128\n";
	struct ip_addr a[2];
	char *out;
	size_t len;
	unsigned line;

	(void)state;
	alice_addrs(a);
	assert_int_equal(conf_edit_append(&out, &len, &line, SERVER BOB, strlen(SERVER BOB),
					  "alice", alice_key, a, 2),
			 0);
	assert_int_equal(line, 11);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	free(out);
	/* A last line without its newline gets one first. */
	assert_int_equal(conf_edit_append(&out, &len, &line, "x = 1", 5, "alice", alice_key, a, 1),
			 0);
	assert_int_equal(line, 3);
	assert_true(len > strlen("x = 1\n\n[Peer]\n# alice\n"));
	assert_memory_equal(out, "x = 1\n\n[Peer]\n# alice\n", strlen("x = 1\n\n[Peer]\n# alice\n"));
	free(out);
}

/* What is appended is named as conf_parse() reads names; so are hand-written
 * peers, whose header lines are what remove takes. */
static void conf_parse_reads_the_names(void **state)
{
	static const char text[] = SERVER BOB CAROL;
	struct diag_list diags = { 0 };
	struct ip_addr a[2];
	struct conf *c;
	char *added;
	size_t len;
	unsigned line;

	(void)state;
	alice_addrs(a);
	assert_int_equal(conf_edit_append(&added, &len, &line, text, strlen(text), "alice",
					  alice_key, a, 2),
			 0);
	assert_int_equal(conf_parse(&c, "t.conf", added, len, &diags), 0);
	assert_int_equal(c->n_peers, 3);
	assert_string_equal(c->peers[0].name, "bob");
	assert_int_equal(c->peers[0].line, 6);
	assert_string_equal(c->peers[1].name, "carol");
	assert_int_equal(c->peers[1].line, 12);
	assert_string_equal(c->peers[2].name, "alice");
	assert_int_equal(c->peers[2].line, line);
	assert_int_equal(c->peers[2].n_allowed_ips, 2);
	conf_free(c);
	diag_list_clear(&diags);
	free(added);
}

/* remove_is(TEXT, LINE, WANT): removing the [Peer] at LINE from TEXT gives WANT. */
static void remove_is(const char *text, unsigned line, const char *want)
{
	char *out;
	size_t len;

	assert_int_equal(conf_edit_remove(&out, &len, text, strlen(text), line), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	free(out);
}

static void removes_exactly_the_section(void **state)
{
	(void)state;
	/* The last: with the blank line before it. */
	remove_is(SERVER BOB, 6, SERVER);
	remove_is(SERVER BOB CAROL, 12, SERVER BOB "\n# Carol's laptop, added by hand\n");
	/* One before another: up to the next header, its comments included. */
	remove_is(SERVER BOB CAROL, 6,
		  SERVER "\n  [ peer ]  # the header may have a comment\r\n"
			 "#carol\r\nPublicKey = yn71pK+wIxqimxrL4gH3uSnHRk3MnkAUx+fYPpJu73s=\r\n"
			 "# wg-rp: AllowPorts = 8000-8100\nAllowedIPs = 10.0.0.3/32\n");
	/* The first line of the file; a header without a newline. */
	remove_is("[Peer]\n# bob\nPublicKey = x\n[Interface]\n", 1, "[Interface]\n");
	remove_is("[Interface]\n[Peer]", 2, "[Interface]\n");
}

static void remove_undoes_append(void **state)
{
	static const char *const texts[] = { "", SERVER, SERVER BOB, SERVER BOB CAROL,
					     SERVER CAROL BOB };
	struct ip_addr a[2];
	char *added, *removed;
	size_t added_len, removed_len;
	unsigned line;

	(void)state;
	alice_addrs(a);
	for (size_t i = 0; i < N_ELEMS(texts); i++) {
		assert_int_equal(conf_edit_append(&added, &added_len, &line, texts[i],
						  strlen(texts[i]), "alice", alice_key, a, 2),
				 0);
		assert_int_equal(conf_edit_remove(&removed, &removed_len, added, added_len, line),
				 0);
		assert_int_equal(removed_len, strlen(texts[i]));
		assert_memory_equal(removed, texts[i], removed_len);
		free(added);
		free(removed);
	}
}

/* Only a [Peer] header's line: not another line, not past the end. */
static void remove_of_no_peer_header(void **state)
{
	static const unsigned lines[] = { 0, 1, 5, 7, 10, 11, 12, 1000 };
	char *out = NULL;
	size_t len;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(lines); i++)
		assert_int_equal(conf_edit_remove(&out, &len, SERVER BOB, strlen(SERVER BOB),
						  lines[i]),
				 -ENOENT);
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_are_short_and_plain),
		cmocka_unit_test(appends_a_peer_after_a_blank_line),
		cmocka_unit_test(conf_parse_reads_the_names),
		cmocka_unit_test(removes_exactly_the_section),
		cmocka_unit_test(remove_undoes_append),
		cmocka_unit_test(remove_of_no_peer_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
