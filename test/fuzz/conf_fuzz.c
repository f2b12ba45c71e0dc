/* The config parser takes a file a user wrote: any bytes must give a config
 * or errors, never a crash, a leak or a hang. The -t summary is printed too so
 * that every parsed value also goes through the formatting code, and a new
 * client's addresses are picked (rps add-client) in whatever subnets and peer
 * networks the config has. A reload compares two such files: the input,
 * split at its first "\n%%\n", is an old config and a new one; without the
 * mark, the config is compared with itself, which must change nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wgrp/cli.h"
#include "wgrp/conf.h"
#include "wgrp/conf_diff.h"
#include "wgrp/peer_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MARK "\n%%\n"

/* A reload from old to new, as a daemon makes it: old's secrets digested and
 * wiped first. */
static void diff(struct conf *old, const struct conf *new, bool same)
{
	struct conf_secrets secrets;
	struct conf_diff d;
	struct diag_list diags = { 0 };

	if (conf_secrets_take(&secrets, old) < 0)
		return;
	conf_wipe_private_key(old);
	if (conf_diff(&d, old, &secrets, new, "fuzz", &diags) == 0) {
		if (same && !conf_diff_empty(&d))
			abort();
		conf_diff_free(&d);
	} else if (same) {
		abort();
	}
	conf_secrets_clear(&secrets);
	diag_list_clear(&diags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cli_program program = { .name = "fuzz" };
	static FILE *sink;
	const char *text = (const char *)data;
	const char *mark = memmem(text, size, MARK, strlen(MARK));
	size_t old_len = mark ? (size_t)(mark - text) : size;
	struct diag_list diags = { 0 };
	struct options o = { .buffer_kb = 64 };
	struct conf *c = NULL, *again = NULL;

	if (!sink)
		sink = fopen("/dev/null", "w");
	if (conf_parse(&c, "fuzz.conf", text, old_len, &diags) == 0) {
		struct ip_addr *picked = calloc(c->n_addresses, sizeof(*picked));
		struct errbuf e;
		size_t n;

		cli_print_summary(sink, &program, &o, c);
		if (picked)
			peer_addr_pick(c, NULL, 0, picked, &n, &e);
		free(picked);
		if (mark)
			conf_parse(&again, "fuzz.conf", mark + strlen(MARK),
				   size - old_len - strlen(MARK), &diags);
		else
			conf_parse(&again, "fuzz.conf", text, size, &diags);
		if (again)
			diff(c, again, !mark);
	}
	conf_free(c);
	conf_free(again);
	diag_list_clear(&diags);
	return 0;
}
