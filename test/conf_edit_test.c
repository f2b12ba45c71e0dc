/* The text edits of rps add-client and remove-client: a [Peer] appended as
 * the docs show it, removed by name with every other byte kept, names found
 * only where they are names. */
#include <errno.h>
#include <stdlib.h>

#include "test.h"
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

	(void)state;
	alice_addrs(a);
	assert_int_equal(conf_edit_append(&out, &len, SERVER BOB, strlen(SERVER BOB), "alice",
					  alice_key, a, 2),
			 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	free(out);
	/* A last line without its newline gets one first. */
	assert_int_equal(conf_edit_append(&out, &len, "x = 1", 5, "alice", alice_key, a, 1), 0);
	assert_true(len > strlen("x = 1\n\n[Peer]\n# alice\n"));
	assert_memory_equal(out, "x = 1\n\n[Peer]\n# alice\n", strlen("x = 1\n\n[Peer]\n# alice\n"));
	free(out);
}

static void finds_names_right_after_a_peer_header(void **state)
{
	static const char text[] = SERVER BOB CAROL;

	(void)state;
	assert_int_equal(conf_edit_find(text, strlen(text), "bob"), 6);
	assert_int_equal(conf_edit_find(text, strlen(text), "carol"), 12);
	assert_int_equal(conf_edit_find(text, strlen(text), "Bob"), 0);
	assert_int_equal(conf_edit_find(text, strlen(text), "bo"), 0);
	/* Comments elsewhere are no names. */
	assert_int_equal(conf_edit_find(text, strlen(text), "Carol's"), 0);
	assert_int_equal(conf_edit_find(text, strlen(text), "the"), 0);
	/* Nor wg-rp's settings, nor a name after [Interface]. */
	assert_int_equal(conf_edit_find("[Peer]\n# wg-rp: x\n", 18, "wg-rp:"), 0);
	assert_int_equal(conf_edit_find("[Interface]\n# bob\n", 18, "bob"), 0);
	/* A header at the very end has no name line. */
	assert_int_equal(conf_edit_find("[Peer]", 6, "bob"), 0);
	assert_int_equal(conf_edit_find("", 0, "bob"), 0);
}

/* remove_is(TEXT, NAME, WANT, LINE): removing NAME from TEXT gives WANT. */
static void remove_is(const char *text, const char *name, const char *want, unsigned want_line)
{
	char *out;
	size_t len;
	unsigned line;

	assert_int_equal(conf_edit_remove(&out, &len, &line, text, strlen(text), name), 0);
	assert_int_equal(line, want_line);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	free(out);
}

static void removes_exactly_the_section(void **state)
{
	(void)state;
	/* The last: with the blank line before it. */
	remove_is(SERVER BOB, "bob", SERVER, 6);
	remove_is(SERVER BOB CAROL, "carol", SERVER BOB "\n# Carol's laptop, added by hand\n", 12);
	/* One before another: up to the next header, its comments included. */
	remove_is(SERVER BOB CAROL, "bob",
		  SERVER "\n  [ peer ]  # the header may have a comment\r\n"
			 "#carol\r\nPublicKey = yn71pK+wIxqimxrL4gH3uSnHRk3MnkAUx+fYPpJu73s=\r\n"
			 "# wg-rp: AllowPorts = 8000-8100\nAllowedIPs = 10.0.0.3/32\n",
		  6);
	/* The first line of the file. */
	remove_is("[Peer]\n# bob\nPublicKey = x\n[Interface]\n", "bob", "[Interface]\n", 1);
}

static void remove_undoes_append(void **state)
{
	static const char *const texts[] = { SERVER, SERVER BOB, SERVER BOB CAROL, SERVER CAROL BOB };
	struct ip_addr a[2];
	char *added, *removed;
	size_t added_len, removed_len;
	unsigned line;

	(void)state;
	alice_addrs(a);
	for (size_t i = 0; i < N_ELEMS(texts); i++) {
		assert_int_equal(conf_edit_append(&added, &added_len, texts[i], strlen(texts[i]),
						  "alice", alice_key, a, 2),
				 0);
		assert_int_not_equal(conf_edit_find(added, added_len, "alice"), 0);
		assert_int_equal(conf_edit_remove(&removed, &removed_len, &line, added, added_len,
						  "alice"),
				 0);
		assert_int_equal(removed_len, strlen(texts[i]));
		assert_memory_equal(removed, texts[i], removed_len);
		free(added);
		free(removed);
	}
}

static void remove_of_an_unknown_name(void **state)
{
	char *out = NULL;
	size_t len;
	unsigned line;

	(void)state;
	assert_int_equal(conf_edit_remove(&out, &len, &line, SERVER BOB, strlen(SERVER BOB), "al"),
			 -ENOENT);
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_are_short_and_plain),
		cmocka_unit_test(appends_a_peer_after_a_blank_line),
		cmocka_unit_test(finds_names_right_after_a_peer_header),
		cmocka_unit_test(removes_exactly_the_section),
		cmocka_unit_test(remove_undoes_append),
		cmocka_unit_test(remove_of_an_unknown_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
