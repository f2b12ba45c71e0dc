/* Edits of a server config's text for `rps add-client` and `rps
 * remove-client`: a [Peer] is appended or cut out, and everything else stays
 * byte for byte as the admin wrote it. Pure functions over the text; which
 * [Peer] has which name is conf_parse()'s to say, and it judges the result. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/conf.h"
#include "wgrp/key.h"

/* A client's name, as conf_parse() reads one (struct conf_peer's name):
 * 1-CONF_PEER_NAME_MAX letters, digits, '-', '_' or '.'. */
bool conf_edit_name_valid(const char *name);

/* text (len bytes) with this [Peer] appended, after a blank line:
 *   [Peer]
 *   # NAME
 *   PublicKey = ...
 *   AllowedIPs = ADDR/32, ADDR6/128
 * one host prefix for each of the n addresses; name must be valid. Returns 0
 * with *out (the caller frees it), *out_len and the header's *line, or
 * -ENOMEM. */
int conf_edit_append(char **out, size_t *out_len, unsigned *line, const char *text, size_t len,
		     const char *name, const uint8_t public_key[WG_KEY_LEN],
		     const struct ip_addr *addrs, size_t n);

/* text without the [Peer] whose header is on line: from the header to the
 * next section's header; the last section also takes the blank line before
 * its header with it, so that removing what conf_edit_append() added gives
 * back the text as it was. Returns 0 with *out and *out_len, -ENOENT when
 * line holds no [Peer] header, or -ENOMEM. */
int conf_edit_remove(char **out, size_t *out_len, const char *text, size_t len, unsigned line);
