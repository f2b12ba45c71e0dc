/* Sets of TCP ports as users write them: "1024-65535", "80,443,8000-8999". */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "wgrp/diag.h"

struct port_set {
	uint64_t bits[65536 / 64];
};

/* Parses a comma-separated list of ports and inclusive ranges (1-65535).
 * Returns 0, or -EINVAL with the item at fault in e. */
int port_set_parse(struct port_set *out, const char *s, struct errbuf *e);
void port_set_add_range(struct port_set *s, uint16_t first, uint16_t last);
bool port_set_has(const struct port_set *s, uint16_t port);
