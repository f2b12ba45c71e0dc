#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "wgrp/conf.h"
#include "wgrp/num.h"
#include "wgrp/route.h"

enum section {
	SECTION_NONE,
	SECTION_INTERFACE,
	SECTION_PEER,
	/* After a bad header: its keys are not checked, the header's error covers them. */
	SECTION_INVALID,
};

static const char *const section_names[] = {
	[SECTION_NONE] = "",
	[SECTION_INTERFACE] = "Interface",
	[SECTION_PEER] = "Peer",
	[SECTION_INVALID] = "",
};

/* An AllowedIPs entry with where it came from, to find one given twice. */
struct route_origin {
	struct ip_prefix masked;
	unsigned line;
};

struct parser {
	struct conf *c;
	struct diag_list *diags;
	unsigned line;
	enum section section;
	unsigned section_line;
	unsigned interface_line;   /* 0 until [Interface] is seen */
	unsigned key_seen_line[24]; /* per key_defs entry, in the current section */
	bool has_private_key;
	bool has_public_key; /* for the current peer */
	bool *peer_key_ok;   /* per peer: its PublicKey was valid, for the duplicate check */
	struct route_origin *routes;
	size_t n_routes;
	bool oom;
};

struct key_def {
	const char *name;
	enum section section;
	bool repeatable;
	bool wgrp; /* written "# wg-rp: Key = Value" */
	/* Parses value into the config; NULL for wg-quick-only keys, ignored. */
	int (*parse)(struct parser *p, const char *value, struct errbuf *e);
};

static struct conf_peer *current_peer(struct parser *p)
{
	return &p->c->peers[p->c->n_peers - 1];
}

/* Calls item() for each comma-separated item of value, trimmed of blanks. */
static int for_each_item(struct parser *p, const char *value, struct errbuf *e,
			 int (*item)(struct parser *p, const char *s, struct errbuf *e))
{
	char *copy = strdup(value), *cur, *next;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (cur = copy; cur; cur = next) {
		char *end;

		next = strchr(cur, ',');
		if (next)
			*next++ = '\0';
		while (isblank((unsigned char)*cur))
			cur++;
		end = cur + strlen(cur);
		while (end > cur && isblank((unsigned char)end[-1]))
			*--end = '\0';
		if (!*cur) {
			r = errbuf_set(e, -EINVAL, "empty entry in list");
			break;
		}
		r = item(p, cur, e);
		if (r < 0)
			break;
	}
	free(copy);
	return r;
}

/* A key given but malformed has its own error; it is not also "missing". */
static int parse_private_key(struct parser *p, const char *value, struct errbuf *e)
{
	p->has_private_key = true;
	return key_from_base64(p->c->private_key, value, e);
}

static int add_address(struct parser *p, const char *s, struct errbuf *e)
{
	struct conf *c = p->c;
	struct ip_prefix a;
	char q[QUOTED_MAX];
	int r = ip_prefix_parse(&a, s, e);

	if (r < 0)
		return r;
	for (size_t i = 0; i < c->n_addresses; i++)
		if (ip_addr_equal(&c->addresses[i].addr, &a.addr))
			return errbuf_set(e, -EINVAL, "address %s given twice", quote(q, s));
	if (array_reserve(&c->addresses, c->n_addresses, sizeof(*c->addresses)) < 0)
		return -ENOMEM;
	c->addresses[c->n_addresses++] = a;
	return 0;
}

static int parse_address(struct parser *p, const char *value, struct errbuf *e)
{
	return for_each_item(p, value, e, add_address);
}

static int parse_listen_port(struct parser *p, const char *value, struct errbuf *e)
{
	uint32_t v;
	int r = num_parse_u32(value, 0, 65535, &v, e);

	if (r == 0)
		p->c->listen_port = (uint16_t)v;
	return r;
}

/* The kernel's bounds for a WireGuard device: ETH_MIN_MTU, and the largest
 * packet that still fits a UDP datagram once encrypted over IPv6. */
#define MTU_MIN 68
#define MTU_MAX 65455

static int parse_mtu(struct parser *p, const char *value, struct errbuf *e)
{
	int r = num_parse_u32(value, MTU_MIN, MTU_MAX, &p->c->mtu, e);

	/* Valid, but every larger packet is fragmented or dropped on the way. */
	if (r == 0 && p->c->mtu > CONF_PATH_MTU)
		diag_add(p->diags, DIAG_WARNING,
			 "%s:%u: MTU: %u is more than a usual path carries: 1500 (Ethernet) minus "
			 "80 of WireGuard overhead over IPv6 is %u; larger packets fragment or are "
			 "dropped (leave MTU out for %u)",
			 p->c->name, p->line, p->c->mtu, CONF_PATH_MTU, CONF_PATH_MTU);
	return r;
}

static int parse_fwmark(struct parser *p, const char *value, struct errbuf *e)
{
	char q[QUOTED_MAX];

	if (!strcasecmp(value, "off")) {
		p->c->fwmark = 0;
		return 0;
	}
	/* wg(8) takes hex marks as written by iptables and ip-rule. */
	if (value[0] == '0' && (value[1] == 'x' || value[1] == 'X')) {
		const char *h = value + 2;
		size_t n = strspn(h, "0123456789abcdefABCDEF");

		if (n == 0 || h[n] || n > 8)
			return errbuf_set(e, -EINVAL, "invalid mark %s (expected off, a number, or 0x...)",
					  quote(q, value));
		p->c->fwmark = (uint32_t)strtoul(h, NULL, 16);
		return 0;
	}
	return num_parse_u32(value, 0, UINT32_MAX, &p->c->fwmark, e);
}

static int parse_public_key(struct parser *p, const char *value, struct errbuf *e)
{
	int r = key_from_base64(current_peer(p)->public_key, value, e);

	p->has_public_key = true;
	p->peer_key_ok[p->c->n_peers - 1] = r == 0;
	return r;
}

static int parse_preshared_key(struct parser *p, const char *value, struct errbuf *e)
{
	struct conf_peer *peer = current_peer(p);
	int r = key_from_base64(peer->preshared_key, value, e);

	if (r == 0)
		peer->has_preshared_key = true;
	return r;
}

static int add_allowed_ip(struct parser *p, const char *s, struct errbuf *e)
{
	struct conf_peer *peer = current_peer(p);
	struct ip_prefix a, m;
	char q[QUOTED_MAX], masked[ADDR_PREFIX_STRLEN];
	int r = ip_prefix_parse(&a, s, e);

	if (r < 0)
		return r;
	m = ip_prefix_masked(&a);
	if (ip_prefix_cmp(&a, &m) != 0) {
		ip_prefix_format(&m, masked, sizeof(masked));
		diag_add(p->diags, DIAG_WARNING,
			 "%s:%u: AllowedIPs: %s has host bits set; the device uses %s", p->c->name,
			 p->line, quote(q, s), masked);
	}
	if (array_reserve(&peer->allowed_ips, peer->n_allowed_ips, sizeof(*peer->allowed_ips)) < 0 ||
	    array_reserve(&p->routes, p->n_routes, sizeof(*p->routes)) < 0)
		return -ENOMEM;
	peer->allowed_ips[peer->n_allowed_ips++] = m;
	p->routes[p->n_routes++] = (struct route_origin){ .masked = m, .line = p->line };
	return 0;
}

static int parse_allowed_ips(struct parser *p, const char *value, struct errbuf *e)
{
	/* An empty AllowedIPs is valid in wg(8): a peer that routes nothing. */
	if (!*value)
		return 0;
	return for_each_item(p, value, e, add_allowed_ip);
}

static int parse_endpoint(struct parser *p, const char *value, struct errbuf *e)
{
	struct conf_peer *peer = current_peer(p);
	int r = hostport_parse(&peer->endpoint, value, CONF_DEFAULT_ENDPOINT_PORT, e);

	if (r == 0)
		peer->has_endpoint = true;
	return r;
}

static int parse_keepalive(struct parser *p, const char *value, struct errbuf *e)
{
	uint32_t v = 0;
	int r = strcasecmp(value, "off") ? num_parse_u32(value, 0, 65535, &v, e) : 0;

	if (r == 0)
		current_peer(p)->persistent_keepalive = (uint16_t)v;
	return r;
}

static int parse_route(struct parser *p, const char *value, struct errbuf *e)
{
	struct conf *c = p->c;
	struct route r;
	int ret = route_parse(&r, value, e);

	if (ret < 0)
		return ret;
	if (array_reserve(&c->routes, c->n_routes, sizeof(*c->routes)) < 0)
		return -ENOMEM;
	c->routes[c->n_routes].spec = strdup(value);
	if (!c->routes[c->n_routes].spec)
		return -ENOMEM;
	c->routes[c->n_routes++].line = p->line;
	return 0;
}

static int parse_allow_ports(struct parser *p, const char *value, struct errbuf *e)
{
	struct conf_peer *peer = current_peer(p);
	struct port_set *set = malloc(sizeof(*set));
	int r;

	if (!set)
		return -ENOMEM;
	r = port_set_parse(set, value, e);
	if (r < 0) {
		free(set);
		return r;
	}
	peer->allow_ports = set;
	return 0;
}

static int parse_max_mappings(struct parser *p, const char *value, struct errbuf *e)
{
	return num_parse_u32(value, 1, CONF_MAX_MAPPINGS, &current_peer(p)->max_mappings, e);
}

static int parse_max_conns_per_source(struct parser *p, const char *value, struct errbuf *e)
{
	return num_parse_u32(value, 1, CONF_MAX_CONNS_PER_SOURCE,
			     &current_peer(p)->max_conns_per_source, e);
}

static const struct key_def key_defs[] = {
	{ "PrivateKey", SECTION_INTERFACE, false, false, parse_private_key },
	{ "Address", SECTION_INTERFACE, true, false, parse_address },
	{ "ListenPort", SECTION_INTERFACE, false, false, parse_listen_port },
	{ "MTU", SECTION_INTERFACE, false, false, parse_mtu },
	{ "FwMark", SECTION_INTERFACE, false, false, parse_fwmark },
	{ "DNS", SECTION_INTERFACE, true, false, NULL },
	{ "Table", SECTION_INTERFACE, true, false, NULL },
	{ "PreUp", SECTION_INTERFACE, true, false, NULL },
	{ "PostUp", SECTION_INTERFACE, true, false, NULL },
	{ "PreDown", SECTION_INTERFACE, true, false, NULL },
	{ "PostDown", SECTION_INTERFACE, true, false, NULL },
	{ "SaveConfig", SECTION_INTERFACE, true, false, NULL },
	{ "PublicKey", SECTION_PEER, false, false, parse_public_key },
	{ "PresharedKey", SECTION_PEER, false, false, parse_preshared_key },
	{ "AllowedIPs", SECTION_PEER, true, false, parse_allowed_ips },
	{ "Endpoint", SECTION_PEER, false, false, parse_endpoint },
	{ "PersistentKeepalive", SECTION_PEER, false, false, parse_keepalive },
	{ "Route", SECTION_INTERFACE, true, true, parse_route },
	{ "AllowPorts", SECTION_PEER, false, true, parse_allow_ports },
	{ "MaxMappings", SECTION_PEER, false, true, parse_max_mappings },
	{ "MaxConnsPerSource", SECTION_PEER, false, true, parse_max_conns_per_source },
};

_Static_assert(sizeof(key_defs) / sizeof(key_defs[0]) <=
		       sizeof(((struct parser *)0)->key_seen_line) / sizeof(unsigned),
	       "key_seen_line must have a slot per key");

#define error_at(p, ...) diag_add((p)->diags, DIAG_ERROR, __VA_ARGS__)

static void end_section(struct parser *p)
{
	if (p->section == SECTION_PEER) {
		if (!p->has_public_key)
			error_at(p, "%s:%u: [Peer] has no PublicKey", p->c->name, p->section_line);
		else if (current_peer(p)->n_allowed_ips == 0)
			diag_add(p->diags, DIAG_WARNING,
				 "%s:%u: [Peer] has no AllowedIPs; no traffic will reach it",
				 p->c->name, p->section_line);
	}
	memset(p->key_seen_line, 0, sizeof(p->key_seen_line));
}

static int begin_section(struct parser *p, const char *header)
{
	char name[32], q[QUOTED_MAX];
	size_t len = strlen(header);
	const char *s = header + 1;

	end_section(p);
	p->section = SECTION_INVALID;
	if (header[len - 1] != ']') {
		error_at(p, "%s:%u: malformed section header %s", p->c->name, p->line,
			 quote(q, header));
		return 0;
	}
	len -= 2;
	while (len && isblank((unsigned char)*s))
		s++, len--;
	while (len && isblank((unsigned char)s[len - 1]))
		len--;
	snprintf(name, sizeof(name), "%.*s", (int)(len < sizeof(name) ? len : sizeof(name) - 1), s);

	if (!strcasecmp(name, "Interface") && len == strlen("Interface")) {
		if (p->interface_line) {
			error_at(p, "%s:%u: second [Interface] section (the first is at line %u)",
				 p->c->name, p->line, p->interface_line);
			return 0;
		}
		p->interface_line = p->line;
		p->section = SECTION_INTERFACE;
	} else if (!strcasecmp(name, "Peer") && len == strlen("Peer")) {
		if (array_reserve(&p->c->peers, p->c->n_peers, sizeof(*p->c->peers)) < 0 ||
		    array_reserve(&p->peer_key_ok, p->c->n_peers, sizeof(*p->peer_key_ok)) < 0)
			return -ENOMEM;
		p->peer_key_ok[p->c->n_peers] = false;
		p->c->peers[p->c->n_peers++] = (struct conf_peer){ .line = p->line };
		p->has_public_key = false;
		p->section = SECTION_PEER;
	} else {
		error_at(p, "%s:%u: unknown section %s (expected [Interface] or [Peer])", p->c->name,
			 p->line, quote(q, header));
		return 0;
	}
	p->section_line = p->line;
	return 0;
}

/* wgrp: the line was "# wg-rp: ...", line is what follows the colon. */
static int parse_key_value(struct parser *p, char *line, bool wgrp)
{
	char *eq = strchr(line, '='), *key = line, *value, *end;
	const struct key_def *def = NULL;
	char q[QUOTED_MAX];
	struct errbuf e;
	size_t i;
	int r;

	if (!eq) {
		error_at(p, "%s:%u: expected \"Key = Value\", got %s", p->c->name, p->line,
			 quote(q, line));
		return 0;
	}
	/* Keys are split at the first '=': base64 padding stays in the value. */
	*eq = '\0';
	value = eq + 1;
	for (end = eq; end > key && isblank((unsigned char)end[-1]);)
		*--end = '\0';
	while (isblank((unsigned char)*value))
		value++;

	if (p->section == SECTION_INVALID)
		return 0;
	for (i = 0; i < sizeof(key_defs) / sizeof(key_defs[0]); i++) {
		if (!strcasecmp(key, key_defs[i].name)) {
			def = &key_defs[i];
			break;
		}
	}
	if (!def) {
		if (wgrp)
			error_at(p, "%s:%u: unknown wg-rp key %s (expected Route in [Interface]; "
				    "AllowPorts, MaxMappings or MaxConnsPerSource in [Peer])",
				 p->c->name, p->line, quote(q, key));
		else
			error_at(p, "%s:%u: unknown key %s", p->c->name, p->line, quote(q, key));
		return 0;
	}
	/* wg-quick must never see ours, and ours must not hide wg-quick's. */
	if (def->wgrp != wgrp) {
		if (wgrp)
			error_at(p, "%s:%u: %s: a WireGuard key, not wg-rp's: write it without "
				    "\"# wg-rp:\"", p->c->name, p->line, def->name);
		else
			error_at(p, "%s:%u: %s: wg-rp's own key, which wg-quick does not know: write "
				    "it as \"# wg-rp: %s = ...\"", p->c->name, p->line, def->name,
				 def->name);
		return 0;
	}
	if (p->section == SECTION_NONE) {
		error_at(p, "%s:%u: %s: outside of any section (put it under [%s])", p->c->name,
			 p->line, def->name, section_names[def->section]);
		return 0;
	}
	if (def->section != p->section) {
		error_at(p, "%s:%u: %s: belongs in [%s], not [%s]", p->c->name, p->line, def->name,
			 section_names[def->section], section_names[p->section]);
		return 0;
	}
	if (!def->repeatable && p->key_seen_line[i]) {
		error_at(p, "%s:%u: %s: given twice in one section (first at line %u)", p->c->name,
			 p->line, def->name, p->key_seen_line[i]);
		return 0;
	}
	p->key_seen_line[i] = p->line;

	if (!def->parse) {
		diag_add(p->diags, DIAG_WARNING, "%s:%u: %s: wg-quick option, ignored", p->c->name,
			 p->line, def->name);
		return 0;
	}
	r = def->parse(p, value, &e);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		error_at(p, "%s:%u: %s: %s", p->c->name, p->line, def->name, e.msg);
	return 0;
}

/* Removes the surrounding blanks (and a CR from CRLF files). */
static char *trim_blanks(char *line)
{
	char *end = line + strlen(line);

	while (end > line && isspace((unsigned char)end[-1]))
		*--end = '\0';
	while (isspace((unsigned char)*line))
		line++;
	return line;
}

/* What follows '#' on a comment line (trimmed), or NULL for any other line. */
static char *comment_of(char *line)
{
	line = trim_blanks(line);
	return *line == '#' ? trim_blanks(line + 1) : NULL;
}

/* "# wg-rp: Key = Value" gives "Key = Value"; NULL for any other line. */
static char *wgrp_setting(char *comment)
{
	static const char tag[] = "wg-rp:";

	return comment && !strncasecmp(comment, tag, strlen(tag))
		       ? trim_blanks(comment + strlen(tag))
		       : NULL;
}

/* A peer's name: one word of what `rps add-client` takes. */
static bool is_peer_name(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	return n > 0 && n <= CONF_PEER_NAME_MAX && !s[n];
}

/* One line, its comment and blanks not yet removed. */
static int parse_line(struct parser *p, char *line)
{
	char *comment = comment_of(line), *setting = wgrp_setting(comment), *hash;

	if (setting)
		return parse_key_value(p, setting, true);
	if (comment) {
		/* Only the comment right under the header names the peer. */
		if (p->section == SECTION_PEER && p->line == p->section_line + 1 &&
		    is_peer_name(comment)) {
			current_peer(p)->name = strdup(comment);
			if (!current_peer(p)->name)
				return -ENOMEM;
		}
		return 0;
	}
	hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	line = trim_blanks(line);
	if (*line == '[')
		return begin_section(p, line);
	return *line ? parse_key_value(p, line, false) : 0;
}

static int cmp_route_origin(const void *a, const void *b)
{
	const struct route_origin *x = a, *y = b;
	int r = ip_prefix_cmp(&x->masked, &y->masked);

	return r ? r : (x->line > y->line) - (x->line < y->line);
}

static int cmp_peer_key(const void *a, const void *b)
{
	const struct conf_peer *x = *(struct conf_peer *const *)a, *y = *(struct conf_peer *const *)b;
	int r = memcmp(x->public_key, y->public_key, WG_KEY_LEN);

	return r ? r : (x->line > y->line) - (x->line < y->line);
}

/* Checks what only the whole file shows. Each AllowedIPs network can route to
 * one peer only: the kernel would silently move it to the last one. */
static int check_whole(struct parser *p)
{
	struct conf *c = p->c;
	struct conf_peer **by_key = NULL;
	size_t n_keys = 0;
	char net[ADDR_PREFIX_STRLEN];

	if (!p->interface_line) {
		error_at(p, "%s: no [Interface] section", c->name);
	} else {
		if (!p->has_private_key)
			error_at(p, "%s:%u: [Interface] has no PrivateKey", c->name,
				 p->interface_line);
		if (c->n_addresses == 0)
			error_at(p, "%s:%u: [Interface] has no Address", c->name, p->interface_line);
	}

	/* qsort() must not see the NULL of an empty array. */
	if (p->n_routes > 1)
		qsort(p->routes, p->n_routes, sizeof(*p->routes), cmp_route_origin);
	for (size_t i = 1; i < p->n_routes; i++) {
		if (ip_prefix_cmp(&p->routes[i].masked, &p->routes[i - 1].masked))
			continue;
		ip_prefix_format(&p->routes[i].masked, net, sizeof(net));
		error_at(p, "%s:%u: AllowedIPs: %s is already given at line %u", c->name,
			 p->routes[i].line, net, p->routes[i - 1].line);
	}

	by_key = calloc(c->n_peers ? c->n_peers : 1, sizeof(*by_key));
	if (!by_key)
		return -ENOMEM;
	/* A peer without a valid key has its error already; its zero key is no duplicate. */
	for (size_t i = 0; i < c->n_peers; i++)
		if (p->peer_key_ok[i])
			by_key[n_keys++] = &c->peers[i];
	if (n_keys > 1)
		qsort(by_key, n_keys, sizeof(*by_key), cmp_peer_key);
	for (size_t i = 1; i < n_keys; i++)
		if (!memcmp(by_key[i]->public_key, by_key[i - 1]->public_key, WG_KEY_LEN))
			error_at(p, "%s:%u: PublicKey: same peer as the [Peer] at line %u", c->name,
				 by_key[i]->line, by_key[i - 1]->line);
	free(by_key);
	return 0;
}

int conf_parse(struct conf **out, const char *name, const char *text, size_t len,
	       struct diag_list *diags)
{
	struct parser p = { .diags = diags };
	size_t errors_before = diags->n_errors, pos = 0;
	int r = -ENOMEM;

	*out = NULL;
	p.c = calloc(1, sizeof(*p.c));
	if (!p.c)
		goto out;
	p.c->name = strdup(name);
	if (!p.c->name)
		goto out;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t line_len = (nl ? (size_t)(nl - text) : len) - pos;
		char *raw;

		p.line++;
		if (memchr(text + pos, '\0', line_len)) {
			error_at(&p, "%s:%u: contains a NUL byte", name, p.line);
			pos += line_len + 1;
			continue;
		}
		raw = strndup(text + pos, line_len);
		if (!raw)
			goto out;
		pos += line_len + 1;
		r = parse_line(&p, raw);
		explicit_bzero(raw, line_len);
		free(raw);
		if (r < 0)
			goto out;
	}
	end_section(&p);
	r = check_whole(&p);
	if (r < 0)
		goto out;
	if (diags->oom) {
		r = -ENOMEM;
		goto out;
	}
	r = diags->n_errors > errors_before ? -EINVAL : 0;
out:
	if (r == -ENOMEM)
		diag_add(diags, DIAG_ERROR, "%s: out of memory", name);
	if (r == 0)
		*out = p.c;
	else
		conf_free(p.c);
	free(p.routes);
	free(p.peer_key_ok);
	return r;
}

int conf_load(struct conf **out, const char *path, struct diag_list *diags)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, r;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		diag_add(diags, DIAG_ERROR, "%s: cannot open: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		diag_add(diags, DIAG_ERROR, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		diag_add(diags, DIAG_ERROR, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > CONF_MAX_FILE_SIZE) {
		r = -EFBIG;
		diag_add(diags, DIAG_ERROR, "%s: too large (%lld bytes, at most %u)", path,
			 (long long)st.st_size, CONF_MAX_FILE_SIZE);
		goto out;
	}
	if (st.st_mode & 077)
		diag_add(diags, DIAG_WARNING,
			 "%s: readable by group or others (mode %04o) but holds a private key; "
			 "chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));

	/* One byte more than allowed, to notice a file that grew since fstat(). */
	text = malloc(CONF_MAX_FILE_SIZE + 1);
	if (!text) {
		r = -ENOMEM;
		diag_add(diags, DIAG_ERROR, "%s: out of memory", path);
		goto out;
	}
	while ((n = read(fd, text + len, CONF_MAX_FILE_SIZE + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			diag_add(diags, DIAG_ERROR, "%s: cannot read: %s", path, strerror(errno));
			goto out;
		}
		len += (size_t)n;
		if (len > CONF_MAX_FILE_SIZE) {
			r = -EFBIG;
			diag_add(diags, DIAG_ERROR, "%s: too large (more than %u bytes)", path,
				 CONF_MAX_FILE_SIZE);
			goto out;
		}
	}
	r = conf_parse(out, path, text, len, diags);
out:
	if (text) {
		explicit_bzero(text, len);
		free(text);
	}
	close(fd);
	return r;
}

int conf_resolve_endpoints(struct conf *c, struct diag_list *diags)
{
	int r = 0;

	for (size_t i = 0; i < c->n_peers; i++) {
		struct errbuf e;

		if (!c->peers[i].has_endpoint || hostport_resolve(&c->peers[i].endpoint, &e) == 0)
			continue;
		diag_add(diags, DIAG_ERROR, "%s:%u: Endpoint: %s", c->name, c->peers[i].line, e.msg);
		r = -EHOSTUNREACH;
	}
	return r;
}

void conf_wipe_private_key(struct conf *c)
{
	explicit_bzero(c->private_key, WG_KEY_LEN);
	for (size_t i = 0; i < c->n_peers; i++)
		explicit_bzero(c->peers[i].preshared_key, WG_KEY_LEN);
}

size_t conf_peer_of(const struct conf *c, const struct ip_addr *addr)
{
	size_t best = c->n_peers;
	int best_cidr = -1;

	for (size_t i = 0; i < c->n_peers; i++)
		for (size_t j = 0; j < c->peers[i].n_allowed_ips; j++)
			if (c->peers[i].allowed_ips[j].cidr > best_cidr &&
			    ip_prefix_contains(&c->peers[i].allowed_ips[j], addr)) {
				best = i;
				best_cidr = c->peers[i].allowed_ips[j].cidr;
			}
	return best;
}

void conf_free(struct conf *c)
{
	if (!c)
		return;
	conf_wipe_private_key(c);
	for (size_t i = 0; i < c->n_peers; i++) {
		free(c->peers[i].allowed_ips);
		free(c->peers[i].name);
		free(c->peers[i].allow_ports);
	}
	free(c->peers);
	for (size_t i = 0; i < c->n_routes; i++)
		free(c->routes[i].spec);
	free(c->routes);
	free(c->addresses);
	free(c->name);
	free(c);
}
