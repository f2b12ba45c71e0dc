/* The config parser takes a file a user wrote: any bytes must give a config
 * or errors, never a crash, a leak or a hang. The -t summary is printed too so
 * that every parsed value also goes through the formatting code, and a new
 * client's addresses are picked (rps add-client) in whatever subnets and peer
 * networks the config has. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "wgrp/cli.h"
#include "wgrp/conf.h"
#include "wgrp/peer_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cli_program program = { .name = "fuzz" };
	static FILE *sink;
	struct diag_list diags = { 0 };
	struct options o = { .buffer_kb = 64 };
	struct conf *c = NULL;

	if (!sink)
		sink = fopen("/dev/null", "w");
	if (conf_parse(&c, "fuzz.conf", (const char *)data, size, &diags) == 0) {
		struct ip_addr *picked = calloc(c->n_addresses, sizeof(*picked));
		struct errbuf e;
		size_t n;

		cli_print_summary(sink, &program, &o, c);
		if (picked)
			peer_addr_pick(c, NULL, 0, picked, &n, &e);
		free(picked);
	}
	conf_free(c);
	diag_list_clear(&diags);
	return 0;
}
