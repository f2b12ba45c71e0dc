/* A userspace WireGuard implementation over its UAPI socket: the text
 * protocol of https://www.wireguard.com/xplatform/ ("set=1"/"get=1", one
 * key=value a line, a blank line to end, answered with "errno=N"). */
#include <arpa/inet.h>
#include <errno.h>
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

static void put_key(FILE *f, const char *name, const uint8_t key[WG_KEY_LEN])
{
	fprintf(f, "%s=", name);
	for (int i = 0; i < WG_KEY_LEN; i++)
		fprintf(f, "%02x", key[i]);
	fputc('\n', f);
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
	char *buf = NULL;
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
	free(buf);
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return r;
}

int wg_uapi_set(const char *ifname, const struct conf *c, struct errbuf *e)
{
	char *text = NULL, endpoint[ADDR_HOSTPORT_STRLEN], prefix[ADDR_PREFIX_STRLEN];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r;

	if (!f)
		return errbuf_set(e, -ENOMEM, "out of memory");
	fputs("set=1\n", f);
	put_key(f, "private_key", c->private_key);
	fprintf(f, "listen_port=%u\nfwmark=%u\nreplace_peers=true\n", c->listen_port, c->fwmark);
	for (size_t i = 0; i < c->n_peers; i++) {
		const struct conf_peer *p = &c->peers[i];

		put_key(f, "public_key", p->public_key);
		if (p->has_preshared_key)
			put_key(f, "preshared_key", p->preshared_key);
		if (p->has_endpoint) {
			sockaddr_inet_format(&p->endpoint.addr, endpoint, sizeof(endpoint));
			fprintf(f, "endpoint=%s\n", endpoint);
		}
		fprintf(f, "persistent_keepalive_interval=%u\nreplace_allowed_ips=true\n",
			p->persistent_keepalive);
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			ip_prefix_format(&p->allowed_ips[j], prefix, sizeof(prefix));
			fprintf(f, "allowed_ip=%s\n", prefix);
		}
	}
	fputc('\n', f);
	if (fclose(f) != 0 || !text) {
		r = errbuf_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	r = exchange(ifname, text, len, NULL, NULL, e);
out:
	if (text) {
		explicit_bzero(text, len);
		free(text);
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
