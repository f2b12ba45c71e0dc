#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wgrp/conf_edit.h"

/* wg-rp's own settings are comments too ("# wg-rp: Key = Value"): never a name. */
#define SETTING_PREFIX "wg-rp:"

bool conf_edit_name_valid(const char *name)
{
	size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "0123456789-_.");

	return len > 0 && len <= CONF_EDIT_NAME_MAX && !name[len];
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

/* Whether l is the comment "# name". */
static bool names(struct line l, const char *name)
{
	struct line c = trimmed(l.start, l.end);
	size_t n = strlen(name);

	if (c.start == c.end || *c.start != '#')
		return false;
	c = trimmed(c.start + 1, c.end);
	if ((size_t)(c.end - c.start) >= strlen(SETTING_PREFIX) &&
	    !strncmp(c.start, SETTING_PREFIX, strlen(SETTING_PREFIX)))
		return false;
	return (size_t)(c.end - c.start) == n && !memcmp(c.start, name, n);
}

static struct line line_at(const char *text, size_t len, size_t pos)
{
	const char *nl = memchr(text + pos, '\n', len - pos);

	return (struct line){ text + pos, nl ? nl : text + len };
}

/* The bytes of the [Peer] named name, [*start, *end), and its header's line;
 * 0 when there is none. */
static unsigned find_span(const char *text, size_t len, const char *name, size_t *start,
			  size_t *end)
{
	unsigned lineno = 0, found = 0;

	for (size_t pos = 0; pos < len;) {
		struct line l = line_at(text, len, pos);
		size_t next = (size_t)(l.end - text) + (l.end < text + len);

		lineno++;
		if (found && is_header(l)) {
			*end = pos;
			return found;
		}
		if (!found && is_peer_header(l) && next < len &&
		    names(line_at(text, len, next), name)) {
			found = lineno;
			*start = pos;
		}
		pos = next;
	}
	if (!found)
		return 0;
	*end = len;
	/* The blank line conf_edit_append() put before it. */
	if (*start >= 1 && text[*start - 1] == '\n' && (*start == 1 || text[*start - 2] == '\n'))
		(*start)--;
	return found;
}

unsigned conf_edit_find(const char *text, size_t len, const char *name)
{
	size_t start, end;

	return find_span(text, len, name, &start, &end);
}

int conf_edit_append(char **out, size_t *out_len, const char *text, size_t len, const char *name,
		     const uint8_t public_key[WG_KEY_LEN], const struct ip_addr *addrs, size_t n)
{
	char key[WG_KEY_B64_LEN + 1], addr[INET6_ADDRSTRLEN];
	/* The text holds the server's private key: built in place, with no
	 * reallocation leaving copies behind. */
	size_t size = len + 1 + sizeof("\n[Peer]\n# \nPublicKey = \nAllowedIPs = \n") +
		      CONF_EDIT_NAME_MAX + WG_KEY_B64_LEN + n * (sizeof(addr) + sizeof(", /128"));
	char *buf = malloc(size);
	size_t pos;

	if (!buf)
		return -ENOMEM;
	key_to_base64(key, public_key);
	memcpy(buf, text, len);
	pos = len;
	if (len && text[len - 1] != '\n')
		buf[pos++] = '\n';
	pos += (size_t)snprintf(buf + pos, size - pos, "\n[Peer]\n# %.*s\nPublicKey = %s\nAllowedIPs = ",
				CONF_EDIT_NAME_MAX, name, key);
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

int conf_edit_remove(char **out, size_t *out_len, unsigned *line, const char *text, size_t len,
		     const char *name)
{
	size_t start, end;
	char *buf;

	*line = find_span(text, len, name, &start, &end);
	if (!*line)
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
