#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wgrp/conf_diff.h"

static int digest(uint8_t out[32], const uint8_t key[WG_KEY_LEN])
{
	unsigned len = 0;

	return EVP_Digest(key, WG_KEY_LEN, out, &len, EVP_sha256(), NULL) == 1 && len == 32
		       ? 0
		       : -EIO;
}

static int peer_secret(uint8_t out[32], const struct conf_peer *p)
{
	if (!p->has_preshared_key) {
		memset(out, 0, 32);
		return 0;
	}
	return digest(out, p->preshared_key);
}

int conf_secrets_take(struct conf_secrets *out, const struct conf *c)
{
	struct conf_secrets s = { .n_peers = c->n_peers };
	int r;

	*out = (struct conf_secrets){ 0 };
	s.preshared_keys = calloc(c->n_peers ? c->n_peers : 1, sizeof(*s.preshared_keys));
	if (!s.preshared_keys)
		return -ENOMEM;
	r = digest(s.private_key, c->private_key);
	for (size_t i = 0; r == 0 && i < c->n_peers; i++)
		r = peer_secret(s.preshared_keys[i], &c->peers[i]);
	if (r < 0) {
		conf_secrets_clear(&s);
		return r;
	}
	*out = s;
	return 0;
}

void conf_secrets_clear(struct conf_secrets *s)
{
	if (s->preshared_keys)
		OPENSSL_cleanse(s->preshared_keys, s->n_peers * sizeof(*s->preshared_keys));
	free(s->preshared_keys);
	OPENSSL_cleanse(s, sizeof(*s));
}

void conf_take_over(struct conf **running, struct conf_secrets *running_secrets, struct conf *c,
		    struct conf_secrets *secrets)
{
	conf_wipe_private_key(c);
	conf_secrets_clear(running_secrets);
	*running_secrets = *secrets;
	*secrets = (struct conf_secrets){ 0 };
	conf_free(*running);
	*running = c;
}

static bool has_prefix(const struct ip_prefix *v, size_t n, const struct ip_prefix *p)
{
	for (size_t i = 0; i < n; i++)
		if (ip_prefix_cmp(&v[i], p) == 0)
			return true;
	return false;
}

/* The same prefixes, in any order (a config lists each once). */
static bool same_prefixes(const struct ip_prefix *a, size_t na, const struct ip_prefix *b,
			  size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!has_prefix(b, nb, &a[i]))
			return false;
	return true;
}

static bool same_sockaddr(const union sockaddr_inet *a, const union sockaddr_inet *b)
{
	if (a->sa.sa_family != b->sa.sa_family || sockaddr_inet_port(a) != sockaddr_inet_port(b))
		return false;
	return a->sa.sa_family == AF_INET
		       ? !memcmp(&a->in.sin_addr, &b->in.sin_addr, sizeof(a->in.sin_addr))
		       : !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(a->in6.sin6_addr));
}

static bool same_string(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

static bool same_port_set(const struct port_set *a, const struct port_set *b)
{
	return a && b ? !memcmp(a, b, sizeof(*a)) : a == b;
}

static int peer_changes(const struct conf_peer *old, const uint8_t old_psk[32],
			const struct conf_peer *new, unsigned *out)
{
	uint8_t psk[32];
	unsigned changes = 0;
	int r = peer_secret(psk, new);

	if (r < 0)
		return r;
	if (!same_prefixes(old->allowed_ips, old->n_allowed_ips, new->allowed_ips,
			   new->n_allowed_ips))
		changes |= CONF_PEER_ALLOWED_IPS;
	if (CRYPTO_memcmp(psk, old_psk, sizeof(psk)))
		changes |= CONF_PEER_PRESHARED_KEY;
	if (old->persistent_keepalive != new->persistent_keepalive)
		changes |= CONF_PEER_KEEPALIVE;
	if (new->has_endpoint &&
	    (!old->has_endpoint || !same_sockaddr(&old->endpoint.addr, &new->endpoint.addr)))
		changes |= CONF_PEER_ENDPOINT;
	if (!same_string(old->name, new->name))
		changes |= CONF_PEER_NAME;
	if (!same_port_set(old->allow_ports, new->allow_ports))
		changes |= CONF_PEER_ALLOW_PORTS;
	if (old->max_mappings != new->max_mappings)
		changes |= CONF_PEER_MAX_MAPPINGS;
	if (old->max_conns_per_source != new->max_conns_per_source)
		changes |= CONF_PEER_MAX_CONNS_PER_SOURCE;
	OPENSSL_cleanse(psk, sizeof(psk));
	*out = changes;
	return 0;
}

/* What only a restart applies: an error each, and -EPERM. */
static int check_fixed(const struct conf *old, const struct conf_secrets *old_secrets,
		       const struct conf *new, const char *program, struct diag_list *diags)
{
	uint8_t key[32];
	bool refused = false;
	int r = digest(key, new->private_key);

	if (r < 0)
		return r;
	if (CRYPTO_memcmp(key, old_secrets->private_key, sizeof(key))) {
		diag_add(diags, DIAG_ERROR,
			 "%s: PrivateKey changed: restart %s to apply it; nothing was reloaded",
			 new->name, program);
		refused = true;
	}
	OPENSSL_cleanse(key, sizeof(key));
	if (!same_prefixes(old->addresses, old->n_addresses, new->addresses, new->n_addresses)) {
		diag_add(diags, DIAG_ERROR,
			 "%s: Address changed: restart %s to apply it; nothing was reloaded",
			 new->name, program);
		refused = true;
	}
	return refused ? -EPERM : 0;
}

static size_t find_peer(const struct conf *c, const uint8_t key[WG_KEY_LEN])
{
	for (size_t i = 0; i < c->n_peers; i++)
		if (!memcmp(c->peers[i].public_key, key, WG_KEY_LEN))
			return i;
	return CONF_DIFF_NONE;
}

int conf_diff(struct conf_diff *out, const struct conf *old, const struct conf_secrets *old_secrets,
	      const struct conf *new, const char *program, struct diag_list *diags)
{
	struct conf_diff d = { .listen_port = old->listen_port != new->listen_port,
			       .fwmark = old->fwmark != new->fwmark, .mtu = old->mtu != new->mtu };
	int r = check_fixed(old, old_secrets, new, program, diags);

	*out = (struct conf_diff){ 0 };
	if (r < 0)
		return r;
	d.old_index = calloc(new->n_peers ? new->n_peers : 1, sizeof(*d.old_index));
	d.changes = calloc(new->n_peers ? new->n_peers : 1, sizeof(*d.changes));
	d.new_index = calloc(old->n_peers ? old->n_peers : 1, sizeof(*d.new_index));
	if (!d.old_index || !d.changes || !d.new_index) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < old->n_peers; i++) {
		d.new_index[i] = find_peer(new, old->peers[i].public_key);
		d.n_removed += d.new_index[i] == CONF_DIFF_NONE;
	}
	for (size_t i = 0; i < new->n_peers; i++) {
		size_t o = find_peer(old, new->peers[i].public_key);

		d.old_index[i] = o;
		if (o == CONF_DIFF_NONE) {
			d.n_added++;
			continue;
		}
		r = peer_changes(&old->peers[o], old_secrets->preshared_keys[o], &new->peers[i],
				 &d.changes[i]);
		if (r < 0)
			goto fail;
		d.n_changed += d.changes[i] != 0;
	}
	*out = d;
	return 0;
fail:
	conf_diff_free(&d);
	return r;
}

void conf_diff_free(struct conf_diff *d)
{
	free(d->old_index);
	free(d->changes);
	free(d->new_index);
	*d = (struct conf_diff){ 0 };
}

bool conf_diff_empty(const struct conf_diff *d)
{
	return !d->n_added && !d->n_removed && !d->n_changed && !d->listen_port && !d->fwmark &&
	       !d->mtu;
}

const char *conf_peer_changes_format(unsigned changes, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ CONF_PEER_ALLOWED_IPS, "AllowedIPs" },
		{ CONF_PEER_PRESHARED_KEY, "PresharedKey" },
		{ CONF_PEER_KEEPALIVE, "PersistentKeepalive" },
		{ CONF_PEER_ENDPOINT, "Endpoint" },
		{ CONF_PEER_NAME, "name" },
		{ CONF_PEER_ALLOW_PORTS, "AllowPorts" },
		{ CONF_PEER_MAX_MAPPINGS, "MaxMappings" },
		{ CONF_PEER_MAX_CONNS_PER_SOURCE, "MaxConnsPerSource" },
	};
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (changes & names[i].bit && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", names[i].name);
	return buf;
}
