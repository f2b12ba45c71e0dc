/* What comes through the control socket, and what status prints: a request
 * from any local root process must parse or give an error; an answer from
 * a daemon of another version must print or be refused. */
#include <stdint.h>
#include <stdio.h>

#include "wgrp/control.h"
#include "wgrp/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *command;
	struct errbuf e;
	json_t *req;
	FILE *null = fopen("/dev/null", "w");

	if (control_request_parse((const char *)data, size, &req, &command, &e) == 0) {
		if (null)
			status_print(null, req);
		json_decref(req);
	}
	if (null)
		fclose(null);
	return 0;
}
