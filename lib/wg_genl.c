/* Kernel WireGuard over its generic netlink family ("wireguard", see
 * <linux/wireguard.h>), with libmnl. */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <string.h>
#include <time.h>

#include "array.h"
#include "wg_backend.h"

/* Set messages are built in one page: the size wg(8) uses, and small enough
 * that large configs take the split path the kernel documents. */
#define SET_BUF_SIZE 4096
/* Dump messages are at most 8 KiB (NLMSG_GOODSIZE); room for any page size. */
#define RECV_BUF_SIZE 32768

struct genl {
	struct mnl_socket *nl;
	unsigned portid;
	uint16_t family;
	uint32_t seq;
};

static struct nlmsghdr *put_request(struct genl *g, char *buf, uint16_t type, uint8_t cmd,
				    uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *gh;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++g->seq;
	gh = mnl_nlmsg_put_extra_header(nlh, sizeof(*gh));
	gh->cmd = cmd;
	gh->version = type == GENL_ID_CTRL ? 1 : WG_GENL_VERSION;
	return nlh;
}

/* Sends nlh and feeds every answer to cb until the ack or the dump's end.
 * Returns 0 or the negative errno of the kernel's (or cb's) error. */
static int talk(struct genl *g, const struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[RECV_BUF_SIZE];
	ssize_t n;
	int r;

	if (mnl_socket_sendto(g->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(g->nl, buf, sizeof(buf));
		if (n < 0) {
			r = -errno;
			goto out;
		}
		r = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, g->portid, cb, data);
	} while (r == MNL_CB_OK);
	r = r == MNL_CB_ERROR ? -errno : 0;
out:
	/* A device dump carries the private key and preshared keys. */
	explicit_bzero(buf, sizeof(buf));
	return r;
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr))
		if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID &&
		    mnl_attr_validate(a, MNL_TYPE_U16) == 0)
			*(uint16_t *)data = mnl_attr_get_u16(a);
	return MNL_CB_OK;
}

static void genl_close(struct genl *g)
{
	if (g->nl)
		mnl_socket_close(g->nl);
	g->nl = NULL;
}

static int genl_open(struct genl *g, struct errbuf *e)
{
	char buf[256];
	struct nlmsghdr *nlh;
	int r;

	*g = (struct genl){ .seq = (uint32_t)time(NULL) };
	g->nl = mnl_socket_open(NETLINK_GENERIC);
	if (!g->nl)
		return errbuf_set(e, -errno, "cannot open a generic netlink socket: %s",
				  strerror(errno));
	if (mnl_socket_bind(g->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = errbuf_set(e, -errno, "cannot bind a generic netlink socket: %s",
			       strerror(errno));
		goto fail;
	}
	g->portid = mnl_socket_get_portid(g->nl);

	nlh = put_request(g, buf, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	r = talk(g, nlh, family_cb, &g->family);
	if (r == 0 && !g->family)
		r = -ENOENT;
	if (r < 0) {
		errbuf_set(e, r, "the kernel has no WireGuard netlink family: %s", strerror(-r));
		goto fail;
	}
	return 0;
fail:
	genl_close(g);
	return r;
}

static bool put_allowed_ip(struct nlmsghdr *nlh, const struct ip_prefix *p)
{
	struct nlattr *nest = mnl_attr_nest_start_check(nlh, SET_BUF_SIZE, 0);
	bool v4 = p->addr.family == AF_INET;

	if (!nest)
		return false;
	if (!mnl_attr_put_u16_check(nlh, SET_BUF_SIZE, WGALLOWEDIP_A_FAMILY,
				    (uint16_t)p->addr.family) ||
	    !mnl_attr_put_check(nlh, SET_BUF_SIZE, WGALLOWEDIP_A_IPADDR,
				v4 ? sizeof(p->addr.v4) : sizeof(p->addr.v6),
				v4 ? (const void *)&p->addr.v4 : (const void *)&p->addr.v6) ||
	    !mnl_attr_put_u8_check(nlh, SET_BUF_SIZE, WGALLOWEDIP_A_CIDR_MASK, p->cidr)) {
		mnl_attr_nest_cancel(nlh, nest);
		return false;
	}
	mnl_attr_nest_end(nlh, nest);
	return true;
}

/* Adds as much of peer sp as fits into nlh, from allowed IP *aip on,
 * advancing *aip. The peer's settings go with its first part only: in a
 * continuation, WGPEER_F_REPLACE_ALLOWEDIPS would drop the part already sent.
 * Returns whether the whole peer is now in. */
static bool put_peer(struct nlmsghdr *nlh, const struct wg_set_peer *sp, size_t *aip)
{
	static const uint8_t no_key[WG_KEY_LEN];
	const struct conf_peer *p = sp->p;
	struct nlattr *nest = mnl_attr_nest_start_check(nlh, SET_BUF_SIZE, 0), *aips;
	size_t n_aips = sp->fields & CONF_PEER_ALLOWED_IPS ? p->n_allowed_ips : 0;
	uint32_t flags = (sp->remove ? WGPEER_F_REMOVE_ME : 0) |
			 (sp->update_only ? WGPEER_F_UPDATE_ONLY : 0) |
			 (sp->fields & CONF_PEER_ALLOWED_IPS ? WGPEER_F_REPLACE_ALLOWEDIPS : 0);
	bool ok;

	if (!nest)
		return false;
	ok = mnl_attr_put_check(nlh, SET_BUF_SIZE, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, p->public_key);
	if (ok && *aip == 0) {
		ok = mnl_attr_put_u32_check(nlh, SET_BUF_SIZE, WGPEER_A_FLAGS, flags) &&
		     (!(sp->fields & CONF_PEER_KEEPALIVE) ||
		      mnl_attr_put_u16_check(nlh, SET_BUF_SIZE, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
					     p->persistent_keepalive)) &&
		     /* An all-zero key removes the one the peer had. */
		     (!(sp->fields & CONF_PEER_PRESHARED_KEY) ||
		      mnl_attr_put_check(nlh, SET_BUF_SIZE, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN,
					 p->has_preshared_key ? p->preshared_key : no_key)) &&
		     (!(sp->fields & CONF_PEER_ENDPOINT) || !p->has_endpoint ||
		      mnl_attr_put_check(nlh, SET_BUF_SIZE, WGPEER_A_ENDPOINT,
					 sockaddr_inet_len(&p->endpoint.addr), &p->endpoint.addr));
	}
	aips = ok && n_aips ? mnl_attr_nest_start_check(nlh, SET_BUF_SIZE, WGPEER_A_ALLOWEDIPS)
			    : NULL;
	if (!ok || (n_aips && !aips)) {
		mnl_attr_nest_cancel(nlh, nest);
		return false;
	}
	while (*aip < n_aips && put_allowed_ip(nlh, &p->allowed_ips[*aip]))
		(*aip)++;
	if (aips)
		mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, nest);
	return *aip == n_aips;
}

int wg_genl_set(const char *ifname, const struct wg_set *s, struct errbuf *e)
{
	const struct conf *c = s->c;
	char buf[SET_BUF_SIZE];
	size_t peer = 0, aip = 0;
	bool first = true;
	struct genl g;
	int r = genl_open(&g, e);

	if (r < 0)
		return r;
	/* The device's own settings go in the first message; peers follow in as
	 * many messages as they need. */
	do {
		struct nlmsghdr *nlh = put_request(&g, buf, g.family, WG_CMD_SET_DEVICE, 0);
		struct nlattr *peers;
		size_t peers_before = peer, aip_before = aip;

		mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
		if (first) {
			if (s->device & WG_SET_REPLACE_PEERS)
				mnl_attr_put_u32(nlh, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
			if (s->device & WG_SET_PRIVATE_KEY)
				mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, c->private_key);
			if (s->device & WG_SET_LISTEN_PORT)
				mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, c->listen_port);
			if (s->device & WG_SET_FWMARK)
				mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, c->fwmark);
		}
		peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
		while (peer < s->n_peers && put_peer(nlh, &s->peers[peer], &aip)) {
			peer++;
			aip = 0;
		}
		mnl_attr_nest_end(nlh, peers);
		if (!first && peer == peers_before && aip == aip_before) {
			r = errbuf_set(e, -EMSGSIZE, "peer %zu does not fit a netlink message", peer + 1);
			break;
		}
		r = talk(&g, nlh, NULL, NULL);
		explicit_bzero(buf, sizeof(buf));
		if (r < 0) {
			errbuf_set(e, r, "configuring WireGuard on %s: %s", ifname, strerror(-r));
			break;
		}
		first = false;
	} while (peer < s->n_peers);
	genl_close(&g);
	return r;
}

struct get_state {
	struct wg_device_info *info;
	int err;
};

static int parse_allowed_ip(const struct nlattr *nest, struct wg_peer_info *peer)
{
	struct ip_prefix p = { 0 };
	const struct nlattr *a;
	bool have_addr = false;

	mnl_attr_for_each_nested(a, nest) {
		switch (mnl_attr_get_type(a)) {
		case WGALLOWEDIP_A_FAMILY:
			if (mnl_attr_validate(a, MNL_TYPE_U16) == 0)
				p.addr.family = mnl_attr_get_u16(a);
			break;
		case WGALLOWEDIP_A_IPADDR:
			if (mnl_attr_get_payload_len(a) == sizeof(p.addr.v4))
				memcpy(&p.addr.v4, mnl_attr_get_payload(a), sizeof(p.addr.v4));
			else if (mnl_attr_get_payload_len(a) == sizeof(p.addr.v6))
				memcpy(&p.addr.v6, mnl_attr_get_payload(a), sizeof(p.addr.v6));
			else
				return -EBADMSG;
			have_addr = true;
			break;
		case WGALLOWEDIP_A_CIDR_MASK:
			if (mnl_attr_validate(a, MNL_TYPE_U8) == 0)
				p.cidr = mnl_attr_get_u8(a);
			break;
		}
	}
	if (!have_addr || (p.addr.family != AF_INET && p.addr.family != AF_INET6))
		return -EBADMSG;
	if (array_reserve(&peer->allowed_ips, peer->n_allowed_ips, sizeof(*peer->allowed_ips)) < 0)
		return -ENOMEM;
	peer->allowed_ips[peer->n_allowed_ips++] = p;
	return 0;
}

/* A dump may split one peer over several messages; its parts carry the same
 * public key, and continue the peer last seen. */
static int parse_peer(const struct nlattr *nest, struct wg_device_info *info)
{
	struct wg_peer_info *peer = NULL;
	const struct nlattr *a, *aip;
	int r;

	mnl_attr_for_each_nested(a, nest) {
		if (mnl_attr_get_type(a) != WGPEER_A_PUBLIC_KEY)
			continue;
		if (mnl_attr_get_payload_len(a) != WG_KEY_LEN)
			return -EBADMSG;
		if (info->n_peers &&
		    !memcmp(info->peers[info->n_peers - 1].public_key, mnl_attr_get_payload(a),
			    WG_KEY_LEN)) {
			peer = &info->peers[info->n_peers - 1];
		} else {
			if (array_reserve(&info->peers, info->n_peers, sizeof(*info->peers)) < 0)
				return -ENOMEM;
			peer = &info->peers[info->n_peers++];
			*peer = (struct wg_peer_info){ 0 };
			memcpy(peer->public_key, mnl_attr_get_payload(a), WG_KEY_LEN);
		}
	}
	if (!peer)
		return -EBADMSG;

	mnl_attr_for_each_nested(a, nest) {
		size_t len = mnl_attr_get_payload_len(a);
		const void *v = mnl_attr_get_payload(a);

		switch (mnl_attr_get_type(a)) {
		case WGPEER_A_PRESHARED_KEY: {
			static const uint8_t zero[WG_KEY_LEN];

			peer->has_preshared_key = len == WG_KEY_LEN && memcmp(v, zero, WG_KEY_LEN);
			break;
		}
		case WGPEER_A_ENDPOINT:
			if (len != sizeof(struct sockaddr_in) && len != sizeof(struct sockaddr_in6))
				break;
			memcpy(&peer->endpoint, v, len);
			peer->has_endpoint = true;
			break;
		case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
			if (mnl_attr_validate(a, MNL_TYPE_U16) == 0)
				peer->persistent_keepalive = mnl_attr_get_u16(a);
			break;
		case WGPEER_A_LAST_HANDSHAKE_TIME: {
			struct { int64_t sec, nsec; } ts; /* struct __kernel_timespec */

			if (len != sizeof(ts))
				break;
			memcpy(&ts, v, sizeof(ts));
			peer->last_handshake = (struct timespec){ .tv_sec = ts.sec, .tv_nsec = ts.nsec };
			break;
		}
		case WGPEER_A_RX_BYTES:
			if (mnl_attr_validate(a, MNL_TYPE_U64) == 0)
				peer->rx_bytes = mnl_attr_get_u64(a);
			break;
		case WGPEER_A_TX_BYTES:
			if (mnl_attr_validate(a, MNL_TYPE_U64) == 0)
				peer->tx_bytes = mnl_attr_get_u64(a);
			break;
		case WGPEER_A_ALLOWEDIPS:
			mnl_attr_for_each_nested(aip, a) {
				r = parse_allowed_ip(aip, peer);
				if (r < 0)
					return r;
			}
			break;
		}
	}
	return 0;
}

static int get_cb(const struct nlmsghdr *nlh, void *data)
{
	struct get_state *s = data;
	const struct nlattr *a, *peer;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		switch (mnl_attr_get_type(a)) {
		case WGDEVICE_A_LISTEN_PORT:
			if (mnl_attr_validate(a, MNL_TYPE_U16) == 0)
				s->info->listen_port = mnl_attr_get_u16(a);
			break;
		case WGDEVICE_A_FWMARK:
			if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
				s->info->fwmark = mnl_attr_get_u32(a);
			break;
		case WGDEVICE_A_PEERS:
			mnl_attr_for_each_nested(peer, a) {
				s->err = parse_peer(peer, s->info);
				if (s->err < 0) {
					errno = -s->err;
					return MNL_CB_ERROR;
				}
			}
			break;
		}
	}
	return MNL_CB_OK;
}

int wg_genl_get(const char *ifname, struct wg_device_info **out, struct errbuf *e)
{
	struct get_state s = { 0 };
	char buf[256];
	struct nlmsghdr *nlh;
	struct genl g;
	int r = genl_open(&g, e);

	*out = NULL;
	if (r < 0)
		return r;
	s.info = calloc(1, sizeof(*s.info));
	if (!s.info) {
		r = errbuf_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	nlh = put_request(&g, buf, g.family, WG_CMD_GET_DEVICE, NLM_F_DUMP);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	r = talk(&g, nlh, get_cb, &s);
	if (r < 0) {
		errbuf_set(e, r, "reading WireGuard device %s: %s", ifname, strerror(-r));
		goto out;
	}
	*out = s.info;
	s.info = NULL;
out:
	wg_device_info_free(s.info);
	genl_close(&g);
	return r;
}
