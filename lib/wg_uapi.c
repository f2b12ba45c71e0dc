/* A userspace WireGuard implementation over its UAPI socket: the text
 * protocol of https://www.wireguard.com/xplatform/ ("set=1"/"get=1", one
 * key=value a line, a blank line to end, answered with "errno=N"). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "array.h"
#include "wg_backend.h"

static int uapi_connect(const char *ifname, struct errbuf *e)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, r;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s.sock", WG_UAPI_DIR, ifname);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errbuf_set(e, -errno, "cannot open a unix socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = errbuf_set(e, -errno, "cannot connect to %s: %s", sun.sun_path, strerror(errno));
		close(fd);
		return r;
	}
	return fd;
}

/* A request's text, grown without leaving copies of its keys behind in freed
 * memory, as open_memstream()'s realloc() would. */
struct text {
	char *s;
	size_t len, cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3))) text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	size_t cap;
	char *grown;
	int n;

	while (!t->oom) {
		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		cap = t->cap * 2 > t->len + (size_t)n + 1 ? t->cap * 2 : t->len + (size_t)n + 1024;
		grown = n < 0 ? NULL : malloc(cap);
		if (!grown) {
			t->oom = true;
			return;
		}
		if (t->s) {
			memcpy(grown, t->s, t->len);
			explicit_bzero(t->s, t->cap);
			free(t->s);
		}
		t->s = grown;
		t->cap = cap;
	}
}

static void put_key(struct text *t, const char *name, const uint8_t key[WG_KEY_LEN])
{
	text_add(t, "%s=", name);
	for (int i = 0; i < WG_KEY_LEN; i++)
		text_add(t, "%02x", key[i]);
	text_add(t, "\n");
}

static int get_key(uint8_t key[WG_KEY_LEN], const char *hex)
{
	if (strlen(hex) != 2 * WG_KEY_LEN)
		return -EBADMSG;
	for (int i = 0; i < WG_KEY_LEN; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -EBADMSG;
		key[i] = (uint8_t)v;
	}
	return 0;
}

/* Writes the whole request, then reads the answer up to its blank line and
 * hands each key=value line to line() (NULL: only errno= is expected). */
static int exchange(const char *ifname, const char *request, size_t len,
		    int (*line)(char *key, char *value, void *data), void *data, struct errbuf *e)
{
	FILE *f = NULL;
	char *buf = NULL, iobuf[BUFSIZ];
	size_t cap = 0;
	long err = -1;
	int fd, r = 0;

	fd = uapi_connect(ifname, e);
	if (fd < 0)
		return fd;
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, request + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = errbuf_set(e, -errno, "writing to the UAPI socket of %s: %s", ifname,
				       strerror(errno));
			goto out;
		}
		done += (size_t)n;
	}
	f = fdopen(fd, "r");
	if (!f) {
		r = errbuf_set(e, -errno, "%s", strerror(errno));
		goto out;
	}
	fd = -1;
	/* An answer to get=1 holds the private key: it is read through buffers
	 * that are wiped after. */
	setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
	while (getline(&buf, &cap, f) > 0) {
		char *eq;

		buf[strcspn(buf, "\n")] = '\0';
		if (!*buf)
			break;
		eq = strchr(buf, '=');
		if (!eq) {
			r = errbuf_set(e, -EBADMSG, "%s: malformed UAPI answer line", ifname);
			goto out;
		}
		*eq = '\0';
		if (!strcmp(buf, "errno")) {
			err = strtol(eq + 1, NULL, 10);
		} else if (line) {
			r = line(buf, eq + 1, data);
			if (r < 0) {
				errbuf_set(e, r, "%s: bad UAPI value for %s", ifname, buf);
				goto out;
			}
		}
	}
	if (err != 0)
		r = errbuf_set(e, err > 0 ? -(int)err : -EPROTO,
			       "the userspace WireGuard of %s answered errno=%ld", ifname, err);
out:
	if (buf) {
		explicit_bzero(buf, cap);
		free(buf);
	}
	if (f) {
		fclose(f);
		explicit_bzero(iobuf, sizeof(iobuf));
	}
	if (fd >= 0)
		close(fd);
	return r;
}

int wg_uapi_set(const char *ifname, const struct wg_set *s, struct errbuf *e)
{
	static const uint8_t no_key[WG_KEY_LEN];
	char endpoint[ADDR_HOSTPORT_STRLEN], prefix[ADDR_PREFIX_STRLEN];
	const struct conf *c = s->c;
	struct text t = { 0 };
	int r;

	text_add(&t, "set=1\n");
	if (s->device & WG_SET_PRIVATE_KEY)
		put_key(&t, "private_key", c->private_key);
	if (s->device & WG_SET_LISTEN_PORT)
		text_add(&t, "listen_port=%u\n", c->listen_port);
	if (s->device & WG_SET_FWMARK)
		text_add(&t, "fwmark=%u\n", c->fwmark);
	if (s->device & WG_SET_REPLACE_PEERS)
		text_add(&t, "replace_peers=true\n");
	for (size_t i = 0; i < s->n_peers; i++) {
		const struct wg_set_peer *sp = &s->peers[i];
		const struct conf_peer *p = sp->p;

		put_key(&t, "public_key", p->public_key);
		if (sp->remove)
			text_add(&t, "remove=true\n");
		if (sp->update_only)
			text_add(&t, "update_only=true\n");
		/* An all-zero key removes the one the peer had. */
		if (sp->fields & CONF_PEER_PRESHARED_KEY)
			put_key(&t, "preshared_key", p->has_preshared_key ? p->preshared_key : no_key);
		if (sp->fields & CONF_PEER_ENDPOINT && p->has_endpoint) {
			sockaddr_inet_format(&p->endpoint.addr, endpoint, sizeof(endpoint));
			text_add(&t, "endpoint=%s\n", endpoint);
		}
		if (sp->fields & CONF_PEER_KEEPALIVE)
			text_add(&t, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
		if (!(sp->fields & CONF_PEER_ALLOWED_IPS))
			continue;
		text_add(&t, "replace_allowed_ips=true\n");
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			ip_prefix_format(&p->allowed_ips[j], prefix, sizeof(prefix));
			text_add(&t, "allowed_ip=%s\n", prefix);
		}
	}
	text_add(&t, "\n");
	if (t.oom)
		r = errbuf_set(e, -ENOMEM, "out of memory");
	else
		r = exchange(ifname, t.s, t.len, NULL, NULL, e);
	if (t.s) {
		explicit_bzero(t.s, t.cap);
		free(t.s);
	}
	return r;
}

static int parse_endpoint(union sockaddr_inet *sa, char *value)
{
	struct hostport hp;

	if (hostport_parse(&hp, value, 0, NULL) < 0 || !hp.is_ip)
		return -EBADMSG;
	*sa = hp.addr;
	return 0;
}

/* Lines come device first, then each peer from its public_key line on. */
static int get_line(char *key, char *value, void *data)
{
	struct wg_device_info *info = data;
	struct wg_peer_info *peer = info->n_peers ? &info->peers[info->n_peers - 1] : NULL;
	struct ip_prefix p;
	uint8_t psk[WG_KEY_LEN], zero[WG_KEY_LEN] = { 0 };
	int r = 0;

	if (!strcmp(key, "public_key")) {
		if (array_reserve(&info->peers, info->n_peers, sizeof(*info->peers)) < 0)
			return -ENOMEM;
		peer = &info->peers[info->n_peers++];
		*peer = (struct wg_peer_info){ 0 };
		return get_key(peer->public_key, value);
	}
	if (!strcmp(key, "listen_port"))
		info->listen_port = (uint16_t)strtoul(value, NULL, 10);
	else if (!strcmp(key, "fwmark"))
		info->fwmark = (uint32_t)strtoul(value, NULL, 10);
	else if (!peer)
		return 0; /* private_key and what later versions add */
	else if (!strcmp(key, "preshared_key")) {
		r = get_key(psk, value);
		peer->has_preshared_key = r == 0 && memcmp(psk, zero, WG_KEY_LEN);
		explicit_bzero(psk, sizeof(psk));
	} else if (!strcmp(key, "endpoint")) {
		r = parse_endpoint(&peer->endpoint, value);
		peer->has_endpoint = r == 0;
	} else if (!strcmp(key, "persistent_keepalive_interval"))
		peer->persistent_keepalive = (uint16_t)strtoul(value, NULL, 10);
	else if (!strcmp(key, "last_handshake_time_sec"))
		peer->last_handshake.tv_sec = (time_t)strtoll(value, NULL, 10);
	else if (!strcmp(key, "last_handshake_time_nsec"))
		peer->last_handshake.tv_nsec = strtol(value, NULL, 10);
	else if (!strcmp(key, "rx_bytes"))
		peer->rx_bytes = strtoull(value, NULL, 10);
	else if (!strcmp(key, "tx_bytes"))
		peer->tx_bytes = strtoull(value, NULL, 10);
	else if (!strcmp(key, "allowed_ip")) {
		if (ip_prefix_parse(&p, value, NULL) < 0)
			return -EBADMSG;
		if (array_reserve(&peer->allowed_ips, peer->n_allowed_ips,
				  sizeof(*peer->allowed_ips)) < 0)
			return -ENOMEM;
		peer->allowed_ips[peer->n_allowed_ips++] = p;
	}
	return r;
}

int wg_uapi_get(const char *ifname, struct wg_device_info **out, struct errbuf *e)
{
	static const char request[] = "get=1\n\n";
	struct wg_device_info *info = calloc(1, sizeof(*info));
	int r;

	*out = NULL;
	if (!info)
		return errbuf_set(e, -ENOMEM, "out of memory");
	r = exchange(ifname, request, sizeof(request) - 1, get_line, info, e);
	if (r < 0) {
		wg_device_info_free(info);
		return r;
	}
	*out = info;
	return 0;
}
