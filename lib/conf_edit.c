#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wgrp/conf_edit.h"

bool conf_edit_name_valid(const char *name)
{
	size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "0123456789-_.");

	return len > 0 && len <= CONF_PEER_NAME_MAX && !name[len];
}

/* One line of the text: bytes [start, end), the newline (if any) at end. */
struct line {
	const char *start, *end;
};

static struct line trimmed(const char *start, const char *end)
{
	while (start < end && isspace((unsigned char)*start))
		start++;
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	return (struct line){ start, end };
}

/* As conf_parse() reads a line: up to its comment, trimmed. */
static struct line content(struct line l)
{
	const char *hash = memchr(l.start, '#', (size_t)(l.end - l.start));

	return trimmed(l.start, hash ? hash : l.end);
}

static bool is_header(struct line l)
{
	struct line c = content(l);

	return c.start < c.end && *c.start == '[';
}

static bool is_peer_header(struct line l)
{
	struct line c = content(l), inside;

	if (c.end - c.start < 2 || *c.start != '[' || c.end[-1] != ']')
		return false;
	inside = trimmed(c.start + 1, c.end - 1);
	return inside.end - inside.start == 4 && !strncasecmp(inside.start, "Peer", 4);
}

static struct line line_at(const char *text, size_t len, size_t pos)
{
	const char *nl = memchr(text + pos, '\n', len - pos);

	return (struct line){ text + pos, nl ? nl : text + len };
}

/* The bytes of the [Peer] whose header is on line, [*start, *end); false
 * when that line is no [Peer] header. */
static bool find_span(const char *text, size_t len, unsigned line, size_t *start, size_t *end)
{
	unsigned lineno = 0;
	size_t pos = 0;

	if (line == 0)
		return false;
	for (; pos < len && lineno + 1 < line; lineno++) {
		const char *nl = memchr(text + pos, '\n', len - pos);

		pos = nl ? (size_t)(nl - text) + 1 : len;
	}
	if (pos >= len || !is_peer_header(line_at(text, len, pos)))
		return false;
	*start = pos;
	*end = len;
	for (pos = (size_t)(line_at(text, len, pos).end - text) + 1; pos < len;) {
		struct line l = line_at(text, len, pos);

		if (is_header(l)) {
			*end = pos;
			return true;
		}
		pos = (size_t)(l.end - text) + 1;
	}
	/* The last section: with the blank line conf_edit_append() put before it. */
	if (*start >= 1 && text[*start - 1] == '\n' && (*start == 1 || text[*start - 2] == '\n'))
		(*start)--;
	return true;
}

int conf_edit_append(char **out, size_t *out_len, unsigned *line, const char *text, size_t len,
		     const char *name, const uint8_t public_key[WG_KEY_LEN],
		     const struct ip_addr *addrs, size_t n)
{
	char key[WG_KEY_B64_LEN + 1], addr[INET6_ADDRSTRLEN];
	/* The text holds the server's private key: built in place, with no
	 * reallocation leaving copies behind. */
	size_t size = len + 1 + sizeof("\n[Peer]\n# \nPublicKey = \nAllowedIPs = \n") +
		      CONF_PEER_NAME_MAX + WG_KEY_B64_LEN + n * (sizeof(addr) + sizeof(", /128"));
	char *buf = malloc(size);
	size_t pos;

	if (!buf)
		return -ENOMEM;
	key_to_base64(key, public_key);
	memcpy(buf, text, len);
	pos = len;
	if (len && text[len - 1] != '\n')
		buf[pos++] = '\n';
	/* After the lines there are and the blank one. */
	*line = 2;
	for (size_t i = 0; i < pos; i++)
		*line += buf[i] == '\n';
	pos += (size_t)snprintf(buf + pos, size - pos, "\n[Peer]\n# %.*s\nPublicKey = %s\nAllowedIPs = ",
				CONF_PEER_NAME_MAX, name, key);
	for (size_t i = 0; i < n; i++) {
		ip_addr_format(&addrs[i], addr, sizeof(addr));
		pos += (size_t)snprintf(buf + pos, size - pos, "%s%s/%u", i ? ", " : "", addr,
					addrs[i].family == AF_INET ? 32 : 128);
	}
	buf[pos++] = '\n';
	*out = buf;
	*out_len = pos;
	return 0;
}

int conf_edit_remove(char **out, size_t *out_len, const char *text, size_t len, unsigned line)
{
	size_t start, end;
	char *buf;

	if (!find_span(text, len, line, &start, &end))
		return -ENOENT;
	/* One byte more, so that an empty result is no malloc(0). */
	buf = malloc(len - (end - start) + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, text, start);
	memcpy(buf + start, text + end, len - end);
	*out = buf;
	*out_len = len - (end - start);
	return 0;
}
