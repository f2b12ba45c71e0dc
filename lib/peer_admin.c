#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wgrp/auth.h"
#include "wgrp/cli.h"
#include "wgrp/conf.h"
#include "wgrp/conf_edit.h"
#include "wgrp/control.h"
#include "wgrp/device.h"
#include "wgrp/file_edit.h"
#include "wgrp/key.h"
#include "wgrp/log.h"
#include "wgrp/peer_addr.h"
#include "wgrp/peer_admin.h"

#define ADD "add-client"
#define REMOVE "remove-client"
/* More --address than a server has subnets are refused by the pick anyway. */
#define MAX_WANTED 16
/* What the printed client config asks of its tunnel: NAT mappings last 30 s
 * or more, and rps expires a client silent for 60 s. */
#define CLIENT_KEEPALIVE_S 25

enum {
	OPT_ENDPOINT = 256,
	OPT_ADDRESS,
	OPT_PUBKEY,
};

enum { RUN, HELP };

struct request {
	bool add;
	const char *name;
	const char *config_path;
	const char *ifname;
	const char *endpoint;
	bool has_pubkey;
	uint8_t pubkey[WG_KEY_LEN];
	struct ip_addr wanted[MAX_WANTED];
	size_t n_wanted;
};

bool peer_admin_command(const char *arg)
{
	return !strcmp(arg, ADD) || !strcmp(arg, REMOVE);
}

void peer_admin_usage_lines(FILE *f, const struct cli_program *p, const char *indent)
{
	fprintf(f,
		"%s%s " ADD " NAME --endpoint HOST[:PORT] [--address IP] [--pubkey KEY] "
		"[-c FILE] [-i NAME]\n"
		"%s%s " REMOVE " NAME [-c FILE] [-i NAME]\n",
		indent, p->name, indent, p->name);
}

static void usage(FILE *f, const struct cli_program *p)
{
	fputs("Usage:\n", f);
	peer_admin_usage_lines(f, p, "  ");
	fprintf(f,
		"\n" ADD " adds a client to the server's config, as a [Peer] with the comment\n"
		"\"# NAME\", and prints the client's config for rpc -c on stdout. " REMOVE "\n"
		"takes it out again. The file keeps its mode and owner; its previous version\n"
		"is kept in FILE.bak.\n\n"
		"  NAME                    1-%d letters, digits, '-', '_' or '.'\n"
		"  --endpoint HOST[:PORT]  where the client reaches the server (PORT: the\n"
		"                          server's ListenPort)\n"
		"  --address IP            the client's tunnel address (default: the lowest\n"
		"                          free one in each subnet of the server's Address);\n"
		"                          once per subnet\n"
		"  --pubkey KEY            the client's public key (default: a new key pair,\n"
		"                          the private key in the printed config)\n"
		"  -c, --config FILE       the server's config (default: %s)\n"
		"  -i, --interface NAME    the server's interface (default: " DEVICE_DEFAULT_IFNAME
		")\n"
		"  -h, --help              print this help and exit\n",
		CONF_PEER_NAME_MAX, p->default_config);
}

static int parse_args(struct request *q, const struct cli_program *p, int argc, char **argv,
		      struct errbuf *e)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "interface", required_argument, NULL, 'i' },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "address", required_argument, NULL, OPT_ADDRESS },
		{ "pubkey", required_argument, NULL, OPT_PUBKEY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char q_[QUOTED_MAX];
	struct errbuf why;
	int c, r;

	*q = (struct request){ .add = !strcmp(argv[0], ADD),
			       .config_path = p->default_config,
			       .ifname = DEVICE_DEFAULT_IFNAME };
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:i:h", longopts, NULL)) != -1) {
		r = 0;
		switch (c) {
		case 'c':
			q->config_path = optarg;
			break;
		case 'i':
			r = cli_parse_ifname(&q->ifname, optarg, e);
			break;
		case OPT_ENDPOINT:
			q->endpoint = optarg;
			break;
		case OPT_ADDRESS:
			if (q->n_wanted == MAX_WANTED)
				return errbuf_set(e, -EINVAL, "--address: at most %d", MAX_WANTED);
			r = ip_addr_parse(&q->wanted[q->n_wanted++], optarg, &why);
			if (r < 0)
				errbuf_set(e, r, "--address: %s", why.msg);
			break;
		case OPT_PUBKEY:
			r = key_from_base64(q->pubkey, optarg, &why);
			if (r < 0)
				errbuf_set(e, r, "--pubkey: %s", why.msg);
			q->has_pubkey = true;
			break;
		case 'h':
			return HELP;
		default:
			return cli_option_error(c, argv, e);
		}
		if (r < 0)
			return -EINVAL;
	}
	if (!q->add && (q->endpoint || q->n_wanted || q->has_pubkey))
		return errbuf_set(e, -EINVAL, REMOVE " takes NAME, -c and -i only");
	if (optind >= argc)
		return errbuf_set(e, -EINVAL, "no NAME given");
	q->name = argv[optind++];
	if (optind < argc)
		return errbuf_set(e, -EINVAL, "unexpected argument %s", quote(q_, argv[optind]));
	if (!conf_edit_name_valid(q->name))
		return errbuf_set(e, -EINVAL, "invalid NAME %s: 1-%d letters, digits, '-', '_' or '.'",
				  quote(q_, q->name), CONF_PEER_NAME_MAX);
	if (q->add && !q->endpoint)
		return errbuf_set(e, -EINVAL,
				  "no --endpoint given: the server's address as the client reaches "
				  "it, e.g. --endpoint vpn.example.com");
	return RUN;
}

static void print_list(FILE *f, const char *key, const struct ip_addr *a, size_t n)
{
	char s[INET6_ADDRSTRLEN];

	fprintf(f, "%s = ", key);
	for (size_t i = 0; i < n; i++) {
		ip_addr_format(&a[i], s, sizeof(s));
		fprintf(f, "%s%s/%u", i ? ", " : "", s, a[i].family == AF_INET ? 32 : 128);
	}
	fputc('\n', f);
}

/* What the new client needs, all checked, and the config's new text. */
struct client {
	uint8_t private_key[WG_KEY_LEN]; /* when made here */
	uint8_t public_key[WG_KEY_LEN];
	uint8_t server_key[WG_KEY_LEN];
	struct hostport endpoint;
	struct ip_addr *addrs; /* the client's, one per subnet */
	struct ip_addr *server_addrs; /* the server's in those subnets */
	size_t n_addrs;
};

/* The client's config, for rpc -c: its tunnel reaches the server alone. */
static void print_client(FILE *f, const struct request *q, const struct client *cl)
{
	char key[WG_KEY_B64_LEN + 1], endpoint[ADDR_HOSTPORT_STRLEN];

	fprintf(f, "# wg-rp client %s: rpc -c FILE -r ...\n[Interface]\n", q->name);
	if (q->has_pubkey) {
		key_to_base64(key, cl->public_key);
		fprintf(f, "# PrivateKey = the client's own private key, whose public key is %s\n",
			key);
	} else {
		key_to_base64(key, cl->private_key);
		fprintf(f, "PrivateKey = %s\n", key);
		explicit_bzero(key, sizeof(key));
	}
	print_list(f, "Address", cl->addrs, cl->n_addrs);
	key_to_base64(key, cl->server_key);
	hostport_format(&cl->endpoint, endpoint, sizeof(endpoint));
	fprintf(f, "\n[Peer]\nPublicKey = %s\nEndpoint = %s\n", key, endpoint);
	print_list(f, "AllowedIPs", cl->server_addrs, cl->n_addrs);
	fprintf(f, "PersistentKeepalive = %d\n", CLIENT_KEEPALIVE_S);
}

/* As wg genkey does: a private key should not go where others may read it. */
static void warn_if_readable(const struct request *q)
{
	struct stat st;

	if (!q->has_pubkey && fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & 077))
		log_warning("the client's config goes to a file that group or others may read "
			    "(mode %04o), and it holds the client's private key: chmod 600 it",
			    (unsigned)(st.st_mode & 07777));
}

/* The index of the first peer named name, or c->n_peers. */
static size_t peer_named(const struct conf *c, const char *name)
{
	size_t i = 0;

	while (i < c->n_peers && !(c->peers[i].name && !strcmp(c->peers[i].name, name)))
		i++;
	return i;
}

static int prepare_add(const struct request *q, const struct conf *c, const struct file_edit *f,
		       struct client *cl, char **text, size_t *len, unsigned *line,
		       struct errbuf *e)
{
	uint8_t secret[WG_KEY_LEN];
	struct errbuf why;
	size_t n = 0, named = peer_named(c, q->name);
	int r;

	if (named < c->n_peers)
		return errbuf_set(e, -EEXIST, "%s:%u: a client named %s is there already",
				  q->config_path, c->peers[named].line, q->name);
	if (key_public(cl->server_key, c->private_key) < 0)
		return errbuf_set(e, -EINVAL, "%s: cannot derive the server's public key", q->config_path);
	if (q->has_pubkey)
		memcpy(cl->public_key, q->pubkey, WG_KEY_LEN);
	else if (key_generate(cl->private_key) < 0 || key_public(cl->public_key, cl->private_key) < 0)
		return errbuf_set(e, -EIO, "cannot make a key pair: libcrypto failed");
	if (!memcmp(cl->public_key, cl->server_key, WG_KEY_LEN))
		return errbuf_set(e, -EINVAL, "--pubkey: that is the server's own public key");
	/* A low-order point: no handshake, no signed API request would work. */
	r = auth_shared_secret(secret, c->private_key, cl->public_key);
	explicit_bzero(secret, sizeof(secret));
	if (r < 0)
		return errbuf_set(e, r, "--pubkey: not a usable X25519 public key (a low-order point)");
	for (size_t i = 0; i < c->n_peers; i++)
		if (!memcmp(c->peers[i].public_key, cl->public_key, WG_KEY_LEN))
			return errbuf_set(e, -EEXIST, "%s:%u: --pubkey: that [Peer] has this key already",
					  q->config_path, c->peers[i].line);
	r = hostport_parse(&cl->endpoint, q->endpoint, c->listen_port, &why);
	if (r < 0)
		return errbuf_set(e, r, "--endpoint: %s%s", why.msg,
				  c->listen_port ? "" : " (the server's config has no ListenPort)");

	cl->addrs = calloc(c->n_addresses, sizeof(*cl->addrs));
	cl->server_addrs = calloc(c->n_addresses, sizeof(*cl->server_addrs));
	if (!cl->addrs || !cl->server_addrs)
		return errbuf_set(e, -ENOMEM, "out of memory");
	r = peer_addr_pick(c, q->wanted, q->n_wanted, cl->addrs, &cl->n_addrs, &why);
	if (r < 0)
		return errbuf_set(e, r, "%s: %s", r == -EINVAL ? "--address" : q->config_path,
				  why.msg);
	for (size_t i = 0; i < c->n_addresses; i++)
		if (peer_addr_subnet(&c->addresses[i]))
			cl->server_addrs[n++] = c->addresses[i].addr;
	r = conf_edit_append(text, len, line, f->text, f->len, q->name, cl->public_key, cl->addrs,
			     cl->n_addrs);
	return r < 0 ? errbuf_set(e, r, "out of memory") : 0;
}

static int prepare_remove(const struct request *q, const struct conf *c,
			  const struct file_edit *f, char **text, size_t *len, unsigned *line,
			  struct errbuf *e)
{
	size_t named = peer_named(c, q->name);
	int r;

	if (named == c->n_peers)
		return errbuf_set(e, -ENOENT,
				  "%s: no client named %s (the comment \"# %s\" right under a [Peer])",
				  q->config_path, q->name, q->name);
	*line = c->peers[named].line;
	r = conf_edit_remove(text, len, f->text, f->len, *line);
	return r < 0 ? errbuf_set(e, r, "out of memory") : 0;
}

/* Whether text still reads as a config: else its errors are logged. */
static int still_valid(const char *path, const char *text, size_t len)
{
	struct diag_list diags = { 0 };
	struct conf *c = NULL;
	int r = conf_parse(&c, path, text, len, &diags);

	if (r < 0) {
		log_diags(&diags);
		log_error("%s: the edited file would have these errors; nothing changed", path);
	}
	conf_free(c);
	diag_list_clear(&diags);
	return r;
}

static void free_text(char *text, size_t len)
{
	if (text)
		explicit_bzero(text, len);
	free(text);
}

/* Has the rps running on q's interface, if one is, apply the edit (a reload,
 * as `rps reload` asks it): the client may connect once this returns. */
static int apply_running(const struct request *q, const struct cli_program *p)
{
	json_t *answer = NULL;
	struct errbuf e;
	int r = control_call(p->name, q->ifname, "reload", CONTROL_RELOAD_TIMEOUT_MS, &answer, &e);

	if (r == -ENOENT || r == -ECONNREFUSED) {
		log_info("no %s is running on %s: it takes the change when it starts", p->name,
			 q->ifname);
		return 0;
	}
	if (r < 0) {
		log_error("the file is changed, but the running %s did not apply it: %s", p->name,
			  e.msg);
		return r;
	}
	log_info("the running %s on %s applied it (%s)", p->name, q->ifname,
		 json_string_value(json_object_get(answer, "message")));
	json_decref(answer);
	return 0;
}

static int run(const struct request *q, const struct cli_program *p)
{
	struct file_edit f = { .fd = -1 };
	struct diag_list diags = { 0 };
	struct client cl = { 0 };
	struct conf *c = NULL;
	struct errbuf e;
	char *text = NULL;
	size_t len = 0;
	unsigned line = 0;
	int status = CLI_EXIT_FAILURE, r;

	/* Keys will be in memory: as for the daemon, no core file, no ptrace. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		log_error("cannot make %s non-dumpable: %s", p->name, strerror(errno));
		goto out;
	}
	r = file_edit_open(&f, q->config_path, CONF_MAX_FILE_SIZE, &e);
	if (r < 0) {
		log_error("%s", e.msg);
		goto out;
	}
	r = conf_parse(&c, q->config_path, f.text, f.len, &diags);
	if (r < 0) {
		log_diags(&diags);
		log_error("%s: fix these errors first; nothing changed", q->config_path);
		goto out;
	}
	if (q->add)
		r = prepare_add(q, c, &f, &cl, &text, &len, &line, &e);
	else
		r = prepare_remove(q, c, &f, &text, &len, &line, &e);
	if (r < 0) {
		log_error("%s", e.msg);
		goto out;
	}
	if (still_valid(q->config_path, text, len) < 0)
		goto out;
	/* Printed before the file changes: a config that cannot reach the
	 * admin must not leave a peer behind nobody has the key of. */
	if (q->add) {
		warn_if_readable(q);
		print_client(stdout, q, &cl);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			log_error("cannot write the client's config: %s; nothing changed",
				  strerror(errno));
			goto out;
		}
	}
	r = file_edit_commit(&f, text, len, &e);
	if (r < 0) {
		log_error("%s%s", e.msg, q->add ? "; the config printed is of no use" : "");
		goto out;
	}
	if (q->add)
		log_info("%s: added client %s (the [Peer] at line %u); the previous version is in "
			 "%s.bak",
			 q->config_path, q->name, line, f.path);
	else
		log_info("%s: removed client %s (the [Peer] at line %u); the previous version is in "
			 "%s.bak",
			 q->config_path, q->name, line, f.path);
	status = apply_running(q, p) < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
out:
	explicit_bzero(cl.private_key, sizeof(cl.private_key));
	free(cl.addrs);
	free(cl.server_addrs);
	free_text(text, len);
	conf_free(c);
	diag_list_clear(&diags);
	file_edit_close(&f);
	return status;
}

int peer_admin_main(const struct cli_program *p, int argc, char **argv)
{
	struct request q;
	struct errbuf e;
	int r = parse_args(&q, p, argc, argv, &e);

	if (r < 0) {
		fprintf(stderr, "%s %s: %s\nUsage:\n", p->name, argv[0], e.msg);
		peer_admin_usage_lines(stderr, p, "  ");
		fprintf(stderr, "(%s %s -h for more)\n", p->name, argv[0]);
		return CLI_EXIT_USAGE;
	}
	if (r == HELP) {
		usage(stdout, p);
		return CLI_EXIT_OK;
	}
	log_init(p->name, 0);
	return run(&q, p);
}
