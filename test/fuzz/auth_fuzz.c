/* The three signature headers arrive from any tunnel peer: the parser must
 * take any bytes. The input is the three values separated by NUL bytes. What
 * parses must check without crashing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wgrp/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[AUTH_KEY_LEN];
	char *text = malloc(size + 3), *values[3];
	struct auth_proof p;
	struct errbuf e;
	size_t at = 0;

	if (!text)
		return 0;
	memcpy(text, data, size);
	memset(text + size, 0, 3);
	for (int i = 0; i < 3; i++) {
		values[i] = text + at;
		at += strlen(text + at) + 1;
		if (at > size + 2)
			at = size + 2;
	}
	if (auth_proof_parse(&p, values[0], values[1], values[2], &e) == 0)
		auth_check(&p, key, "POST", "/api/v1/heartbeat", values[2], strlen(values[2]),
			   p.timestamp, &e);
	free(text);
	return 0;
}
