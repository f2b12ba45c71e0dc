/* --allow-ports comes from the command line: any string must parse or give
 * an error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wgrp/ports.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Arguments cannot hold NUL: strndup stops at one, as argv would. */
	char *s = strndup((const char *)data, size);
	struct port_set set;
	struct errbuf e;

	if (s)
		port_set_parse(&set, s, &e);
	free(s);
	return 0;
}
