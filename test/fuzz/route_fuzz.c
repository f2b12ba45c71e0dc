/* -r specs come from the command line: any string must parse or give an
 * error. Two specs are added to one list to reach the duplicate check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wgrp/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct route_list list = { 0 };
	struct errbuf e;
	const uint8_t *split = memchr(data, '\n', size);
	size_t first = split ? (size_t)(split - data) : size;
	/* Command-line arguments cannot hold NUL: strndup stops at one, as argv would. */
	char *a = strndup((const char *)data, first);
	char *b = split ? strndup((const char *)split + 1, size - first - 1) : NULL;

	if (a)
		route_list_add(&list, a, &e);
	if (b)
		route_list_add(&list, b, &e);
	route_list_clear(&list);
	free(a);
	free(b);
	return 0;
}
