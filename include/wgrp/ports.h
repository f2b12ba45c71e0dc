/* Sets of ports as users write them: "1024-65535", "80,443,8000-8999"; and the
 * transport protocols of the ports wg-rp maps. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "wgrp/diag.h"

struct port_set {
	uint64_t bits[65536 / 64];
};

/* Parses a comma-separated list of ports and inclusive ranges (1-65535).
 * Returns 0, or -EINVAL with the item at fault in e. */
int port_set_parse(struct port_set *out, const char *s, struct errbuf *e);
void port_set_add_range(struct port_set *s, uint16_t first, uint16_t last);
bool port_set_has(const struct port_set *s, uint16_t port);
/* Writes s as port_set_parse() reads it, "1024-65535,8080" style. */
void port_set_print(FILE *f, const struct port_set *s);

/* Room for any port_label(): "65535/udp". */
#define PORT_LABEL_LEN sizeof("65535/udp")

/* "tcp" for IPPROTO_TCP, "udp" for IPPROTO_UDP. */
const char *port_protocol_name(int protocol);
/* Parses "tcp" or "udp" into IPPROTO_TCP or IPPROTO_UDP. Returns 0 or -EINVAL. */
int port_protocol_parse(const char *s, int *out);
/* Writes port as messages name it, and returns buf: "3000" for TCP, as the
 * original wg-rp says it, "5353/udp" for UDP. */
const char *port_label(char buf[PORT_LABEL_LEN], uint16_t port, int protocol);
