/* rps add-client and remove-client edit a file an admin wrote: on any text,
 * removing a section must not crash, leak or hang, and removing a client
 * just appended must give back the text as it was (with a newline added to a
 * last line that had none). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "must.h"
#include "wgrp/conf_edit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[WG_KEY_LEN] = { 9 };
	const char *text = (const char *)data;
	char *added = NULL, *removed = NULL;
	size_t added_len, removed_len;
	struct ip_addr a[2] = { { .family = AF_INET }, { .family = AF_INET6 } };
	unsigned line;
	bool newline = size && text[size - 1] != '\n';

	/* Some line of the text, [Peer] header or not. */
	if (conf_edit_remove(&removed, &removed_len, text, size, size ? data[0] % 64 : 0) == 0) {
		must(removed_len < size);
		free(removed);
	}
	if (conf_edit_append(&added, &added_len, &line, text, size, "alice", key, a, 2) < 0)
		return 0;
	must(conf_edit_remove(&removed, &removed_len, added, added_len, line) == 0);
	must(removed_len == size + newline);
	must(!memcmp(removed, text, size));
	free(removed);
	free(added);
	return 0;
}
