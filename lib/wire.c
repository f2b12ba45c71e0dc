#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wgrp/ports.h"
#include "wgrp/wire.h"

enum field_type {
	FIELD_BOOL,     /* bool */
	FIELD_STRING,   /* char *, malloc'd */
	FIELD_HOSTPORT, /* char[ADDR_HOSTPORT_STRLEN] holding a valid "host:port" */
	FIELD_IP,       /* struct ip_addr */
	FIELD_PORT,     /* uint16_t, 1-65535 */
	FIELD_INT64,    /* int64_t */
	FIELD_PORTS,    /* uint16_t *, malloc'd, with its length at aux */
	FIELD_PROXY,    /* uint8_t, a PROXY protocol version: 0 (none) or 2 */
	FIELD_PROTOCOL, /* uint8_t, IPPROTO_TCP or IPPROTO_UDP as "tcp" or "udp" */
};

#define NONE SIZE_MAX

/* One member of a JSON object and where it lives in its C struct. An optional
 * member has a bool at present telling whether it was there; a required one
 * has present == NONE. */
struct field {
	const char *name;
	enum field_type type;
	size_t offset;
	size_t present;
	size_t aux;
};

#define member(T, m) offsetof(T, m)

static const struct field mapping_request_fields[] = {
	{ "local_addr", FIELD_HOSTPORT, member(struct wire_mapping_request, local_addr), NONE, 0 },
	{ "remote_port", FIELD_PORT, member(struct wire_mapping_request, remote_port), NONE, 0 },
	{ "client_ip", FIELD_IP, member(struct wire_mapping_request, client_ip),
	  member(struct wire_mapping_request, has_client_ip), 0 },
	{ "client_port", FIELD_PORT, member(struct wire_mapping_request, client_port), NONE, 0 },
	{ "proxy_protocol", FIELD_PROXY, member(struct wire_mapping_request, proxy_protocol),
	  member(struct wire_mapping_request, has_proxy_protocol), 0 },
	{ "protocol", FIELD_PROTOCOL, member(struct wire_mapping_request, protocol),
	  member(struct wire_mapping_request, has_protocol), 0 },
};

static const struct field heartbeat_request_fields[] = {
	{ "client_ip", FIELD_IP, member(struct wire_heartbeat_request, client_ip),
	  member(struct wire_heartbeat_request, has_client_ip), 0 },
};

static const struct field reply_fields[] = {
	{ "success", FIELD_BOOL, member(struct wire_reply, success), NONE, 0 },
	{ "message", FIELD_STRING, member(struct wire_reply, message), NONE, 0 },
	{ "server_startup_time", FIELD_INT64, member(struct wire_reply, server_startup_time),
	  member(struct wire_reply, has_server_startup_time), 0 },
	{ "mappings", FIELD_PORTS, member(struct wire_reply, mappings),
	  member(struct wire_reply, has_mappings), member(struct wire_reply, n_mappings) },
	{ "udp_mappings", FIELD_PORTS, member(struct wire_reply, udp_mappings),
	  member(struct wire_reply, has_udp_mappings), member(struct wire_reply, n_udp_mappings) },
	{ "proxy_protocol", FIELD_PROXY, member(struct wire_reply, proxy_protocol),
	  member(struct wire_reply, has_proxy_protocol), 0 },
	{ "protocol", FIELD_PROTOCOL, member(struct wire_reply, protocol),
	  member(struct wire_reply, has_protocol), 0 },
};

#define at(base, off, T) ((T *)((char *)(base) + (off)))

static bool is_port(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 65535;
}

static int decode_field(const struct field *f, const json_t *v, void *out, struct errbuf *e)
{
	struct errbuf why;
	struct hostport hp;
	size_t i, n;
	int protocol;

	switch (f->type) {
	case FIELD_BOOL:
		if (!json_is_boolean(v))
			return errbuf_set(e, -EINVAL, "field \"%s\" must be true or false", f->name);
		*at(out, f->offset, bool) = json_is_true(v);
		return 0;
	case FIELD_STRING:
		if (!json_is_string(v))
			return errbuf_set(e, -EINVAL, "field \"%s\" must be a string", f->name);
		*at(out, f->offset, char *) = strdup(json_string_value(v));
		return *at(out, f->offset, char *) ? 0 : -ENOMEM;
	case FIELD_HOSTPORT:
		if (!json_is_string(v))
			return errbuf_set(e, -EINVAL, "field \"%s\" must be a string", f->name);
		if (hostport_parse(&hp, json_string_value(v), 0, &why) < 0)
			return errbuf_set(e, -EINVAL, "field \"%s\": %s", f->name, why.msg);
		hostport_format(&hp, at(out, f->offset, char), ADDR_HOSTPORT_STRLEN);
		return 0;
	case FIELD_IP:
		if (!json_is_string(v))
			return errbuf_set(e, -EINVAL, "field \"%s\" must be a string", f->name);
		if (ip_addr_parse(at(out, f->offset, struct ip_addr), json_string_value(v), &why) < 0)
			return errbuf_set(e, -EINVAL, "field \"%s\": %s", f->name, why.msg);
		return 0;
	case FIELD_PORT:
		if (!is_port(v))
			return errbuf_set(e, -EINVAL, "field \"%s\" must be an integer from 1 to 65535",
					  f->name);
		*at(out, f->offset, uint16_t) = (uint16_t)json_integer_value(v);
		return 0;
	case FIELD_INT64:
		if (!json_is_integer(v))
			return errbuf_set(e, -EINVAL, "field \"%s\" must be an integer", f->name);
		*at(out, f->offset, int64_t) = json_integer_value(v);
		return 0;
	case FIELD_PROXY:
		if (!json_is_integer(v) ||
		    (json_integer_value(v) != 0 && json_integer_value(v) != 2))
			return errbuf_set(e, -EINVAL,
					  "field \"%s\" must be 0 (none) or 2 (PROXY protocol v2)",
					  f->name);
		*at(out, f->offset, uint8_t) = (uint8_t)json_integer_value(v);
		return 0;
	case FIELD_PROTOCOL:
		if (!json_is_string(v) || port_protocol_parse(json_string_value(v), &protocol) < 0)
			return errbuf_set(e, -EINVAL, "field \"%s\" must be \"tcp\" or \"udp\"",
					  f->name);
		*at(out, f->offset, uint8_t) = (uint8_t)protocol;
		return 0;
	case FIELD_PORTS:
		if (!json_is_array(v))
			return errbuf_set(e, -EINVAL, "field \"%s\" must be a list of ports", f->name);
		n = json_array_size(v);
		*at(out, f->offset, uint16_t *) = calloc(n ? n : 1, sizeof(uint16_t));
		if (!*at(out, f->offset, uint16_t *))
			return -ENOMEM;
		*at(out, f->aux, size_t) = n;
		for (i = 0; i < n; i++) {
			if (!is_port(json_array_get(v, i)))
				return errbuf_set(e, -EINVAL,
						  "field \"%s\" must hold integers from 1 to 65535",
						  f->name);
			(*at(out, f->offset, uint16_t *))[i] =
				(uint16_t)json_integer_value(json_array_get(v, i));
		}
		return 0;
	}
	return -EINVAL;
}

/* Parses body as one JSON object holding fields. With strict, members not in
 * fields are refused. Members of out not in body are left as they were. */
static int decode(const struct field *fields, size_t n_fields, bool strict, void *out,
		  const char *body, size_t len, struct errbuf *e)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	int r = 0;

	/* JSON_REJECT_DUPLICATES: two values for one field would be ambiguous. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return errbuf_set(e, -EINVAL, "invalid JSON at line %d, column %d: %s", jerr.line,
				  jerr.column, jerr.text);
	if (!json_is_object(root)) {
		r = errbuf_set(e, -EINVAL, "expected a JSON object");
		goto out;
	}
	if (strict) {
		json_object_foreach (root, key, v) {
			size_t i;
			char q[QUOTED_MAX];

			for (i = 0; i < n_fields && strcmp(key, fields[i].name); i++)
				;
			if (i == n_fields) {
				r = errbuf_set(e, -EINVAL, "unknown field %s", quote(q, key));
				goto out;
			}
		}
	}
	for (size_t i = 0; i < n_fields; i++) {
		const struct field *f = &fields[i];

		v = json_object_get(root, f->name);
		if (!v || (json_is_null(v) && f->present != NONE)) {
			if (f->present == NONE) {
				r = errbuf_set(e, -EINVAL, "missing field \"%s\"", f->name);
				goto out;
			}
			*at(out, f->present, bool) = false;
			continue;
		}
		r = decode_field(f, v, out, e);
		if (r == -ENOMEM)
			r = errbuf_set(e, -ENOMEM, "out of memory");
		if (r < 0)
			goto out;
		if (f->present != NONE)
			*at(out, f->present, bool) = true;
	}
out:
	json_decref(root);
	return r;
}

/* The length of the valid UTF-8 character at s (RFC 3629: no overlong forms,
 * no surrogates, nothing past U+10FFFF), or 0 if there is none. */
static size_t utf8_char_len(const unsigned char *s)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

void wire_utf8_fix(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		size_t len = utf8_char_len(p);

		if (!len)
			*p = '?';
		p += len ? len : 1;
	}
}

void wire_utf8_trim(char *s)
{
	size_t len = strlen(s);

	/* A character is at most 4 bytes: its lead byte is among the last 3. */
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char c = (unsigned char)s[len - back];
		size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;

		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: look further back */
		if (need > back)
			s[len - back] = '\0';
		return;
	}
}

/* A JSON string of s; bytes that are not UTF-8 (a path of %ff, say) become
 * '?', since JSON text is UTF-8. */
static json_t *text(const char *s)
{
	json_t *v = json_string(s);
	char *fixed;

	if (v || !(fixed = strdup(s)))
		return v;
	wire_utf8_fix(fixed);
	v = json_string(fixed);
	free(fixed);
	return v;
}

static json_t *encode_field(const struct field *f, const void *in)
{
	char buf[INET6_ADDRSTRLEN];
	json_t *list;

	switch (f->type) {
	case FIELD_BOOL:
		return json_boolean(*at(in, f->offset, const bool));
	case FIELD_STRING:
		return text(*at(in, f->offset, char *const) ? *at(in, f->offset, char *const) : "");
	case FIELD_HOSTPORT:
		return json_string(at(in, f->offset, const char));
	case FIELD_IP:
		ip_addr_format(at(in, f->offset, const struct ip_addr), buf, sizeof(buf));
		return json_string(buf);
	case FIELD_PORT:
		return json_integer(*at(in, f->offset, const uint16_t));
	case FIELD_INT64:
		return json_integer(*at(in, f->offset, const int64_t));
	case FIELD_PROXY:
		return json_integer(*at(in, f->offset, const uint8_t));
	case FIELD_PROTOCOL:
		return json_string(port_protocol_name(*at(in, f->offset, const uint8_t)));
	case FIELD_PORTS:
		list = json_array();
		for (size_t i = 0; list && i < *at(in, f->aux, const size_t); i++)
			if (json_array_append_new(list,
						  json_integer((*at(in, f->offset, uint16_t *const))[i])) < 0) {
				json_decref(list);
				return NULL;
			}
		return list;
	}
	return NULL;
}

static int encode(const struct field *fields, size_t n_fields, const void *in, char **out)
{
	json_t *root = json_object();
	int r = -ENOMEM;

	*out = NULL;
	if (!root)
		return -ENOMEM;
	for (size_t i = 0; i < n_fields; i++) {
		if (fields[i].present != NONE && !*at(in, fields[i].present, const bool))
			continue;
		if (json_object_set_new(root, fields[i].name, encode_field(&fields[i], in)) < 0)
			goto out;
	}
	*out = json_dumps(root, JSON_COMPACT);
	if (*out)
		r = 0;
out:
	json_decref(root);
	return r;
}

#define FIELDS(a) a, sizeof(a) / sizeof((a)[0])

/* A UDP entry's "datagrams_in", "datagrams_out" and "drops" by reason. */
static int add_udp_counts(json_t *m, const struct wire_udp_counts *u)
{
	json_t *drops = json_pack("{s:I, s:I, s:I, s:I, s:I}", "too_big", (json_int_t)u->too_big,
				  "flow_cap", (json_int_t)u->flow_cap, "source_cap",
				  (json_int_t)u->source_cap, "no_fds", (json_int_t)u->no_fds,
				  "send_failed", (json_int_t)u->send_failed);

	if (!drops || json_object_set_new(m, "datagrams_in", json_integer((json_int_t)u->datagrams_in)) ||
	    json_object_set_new(m, "datagrams_out", json_integer((json_int_t)u->datagrams_out)) ||
	    json_object_set_new(m, "drops", drops))
		return -ENOMEM;
	return 0;
}

json_t *wire_mapping_info_pack(const struct wire_mapping_info *v)
{
	json_t *m = json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:i}",
			      "remote_port", (int)v->remote_port, "protocol",
			      port_protocol_name(v->protocol), "target", v->target, "local_addr",
			      v->local_addr, "active", (json_int_t)v->active, "total",
			      (json_int_t)v->total, "bytes_in", (json_int_t)v->bytes_in, "bytes_out",
			      (json_int_t)v->bytes_out, "created", (json_int_t)v->created, "signed",
			      (int)v->is_signed, "proxy_protocol", (int)v->proxy_protocol);

	if (m && v->protocol == IPPROTO_UDP && add_udp_counts(m, &v->udp) < 0) {
		json_decref(m);
		m = NULL;
	}
	return m;
}

int wire_mapping_list_encode(const struct wire_mapping_info *v, size_t n, char **out)
{
	json_t *list = json_array(), *root;
	char message[64];

	*out = NULL;
	for (size_t i = 0; list && i < n; i++) {
		if (json_array_append_new(list, wire_mapping_info_pack(&v[i])) < 0) {
			json_decref(list);
			return -ENOMEM;
		}
	}
	snprintf(message, sizeof(message), "%zu mapping%s", n, n == 1 ? "" : "s");
	root = list ? json_pack("{s:b, s:s, s:o}", "success", 1, "message", message,
				"port_mappings", list)
		    : NULL;
	if (!root)
		return -ENOMEM;
	*out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return *out ? 0 : -ENOMEM;
}

int wire_mapping_list_decode(struct wire_mapping_info **out, size_t *n, const char *body,
			     size_t len, struct errbuf *e)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, 0, &jerr), *list, *item;
	size_t i;
	int r = 0, protocol;

	*out = NULL;
	*n = 0;
	if (!root)
		return errbuf_set(e, -EINVAL, "invalid JSON at line %d, column %d: %s", jerr.line,
				  jerr.column, jerr.text);
	list = json_object_get(root, "port_mappings");
	if (!json_is_array(list)) {
		r = errbuf_set(e, -EINVAL, "no list \"port_mappings\"");
		goto out;
	}
	*out = calloc(json_array_size(list) + 1, sizeof(**out));
	if (!*out) {
		r = errbuf_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	json_array_foreach (list, i, item) {
		struct wire_mapping_info *m = &(*out)[*n];
		json_t *port = json_object_get(item, "remote_port");
		json_t *target = json_object_get(item, "target");
		json_t *proto = json_object_get(item, "protocol");

		if (!is_port(port) || !json_is_string(target)) {
			r = errbuf_set(e, -EINVAL, "entry %zu lacks remote_port or target", i + 1);
			goto out;
		}
		/* Absent is TCP, as the original lists; a protocol rpc does not
		 * know is none of its business. */
		protocol = IPPROTO_TCP;
		if (proto && (!json_is_string(proto) ||
			      port_protocol_parse(json_string_value(proto), &protocol) < 0))
			continue;
		m->remote_port = (uint16_t)json_integer_value(port);
		m->protocol = (uint8_t)protocol;
		snprintf(m->target, sizeof(m->target), "%s", json_string_value(target));
		m->is_signed = json_is_true(json_object_get(item, "signed"));
		(*n)++;
	}
out:
	if (r < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	json_decref(root);
	return r;
}

int wire_mapping_request_encode(const struct wire_mapping_request *r, char **out)
{
	return encode(FIELDS(mapping_request_fields), r, out);
}

int wire_mapping_request_decode(struct wire_mapping_request *out, const char *body, size_t len,
				struct errbuf *e)
{
	memset(out, 0, sizeof(*out));
	return decode(FIELDS(mapping_request_fields), true, out, body, len, e);
}

int wire_heartbeat_request_encode(const struct wire_heartbeat_request *r, char **out)
{
	return encode(FIELDS(heartbeat_request_fields), r, out);
}

int wire_heartbeat_request_decode(struct wire_heartbeat_request *out, const char *body,
				  size_t len, struct errbuf *e)
{
	memset(out, 0, sizeof(*out));
	return decode(FIELDS(heartbeat_request_fields), true, out, body, len, e);
}

int wire_reply_encode(const struct wire_reply *r, char **out)
{
	return encode(FIELDS(reply_fields), r, out);
}

int wire_reply_decode(struct wire_reply *out, const char *body, size_t len, struct errbuf *e)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = decode(FIELDS(reply_fields), false, out, body, len, e);
	if (r < 0)
		wire_reply_clear(out);
	return r;
}

void wire_reply_clear(struct wire_reply *r)
{
	free(r->message);
	free(r->mappings);
	free(r->udp_mappings);
	memset(r, 0, sizeof(*r));
}
