/* Strict decimal number parsing for values users type. */
#pragma once

#include <stdint.h>

#include "wgrp/diag.h"

/* Parses s as a decimal integer in [min, max]: digits only, no sign, no
 * spaces, no trailing characters. Returns 0, -EINVAL for text that is not a
 * number, or -ERANGE outside the bounds; e (may be NULL) says which, naming s. */
int num_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out, struct errbuf *e);

/* Parses a TCP/UDP port, 1-65535. */
int num_parse_port(const char *s, uint16_t *out, struct errbuf *e);
