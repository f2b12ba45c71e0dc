/* wgrp-devtool CONF IFNAME: brings IFNAME up from CONF with the library, as
 * the daemons do, then prints what device_get() reads back, in the columns
 * of `wg show IFNAME dump` (an independent reader to compare against):
 *
 *   backend kernel|userspace
 *   device LISTEN_PORT FWMARK(0x..|off)
 *   peer PUBLIC_KEY PRESHARED(set|(none)) ENDPOINT ALLOWED_IPS HANDSHAKE RX TX KEEPALIVE(N|off)
 *   end
 *
 * It prints again on SIGUSR1, and tears the interface down on SIGINT or
 * SIGTERM. Exit status: 0, or 1 with the reason on stderr. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "wgrp/conf.h"
#include "wgrp/device.h"
#include "wgrp/log.h"

static int print_device(struct device *d)
{
	struct wg_device_info *info;
	char key[WG_KEY_B64_LEN + 1], prefix[ADDR_PREFIX_STRLEN], endpoint[ADDR_HOSTPORT_STRLEN];
	struct errbuf e;

	if (device_get(d, &info, &e) < 0) {
		log_error("%s", e.msg);
		return -1;
	}
	printf("backend %s\n", device_backend(d) == DEVICE_KERNEL ? "kernel" : "userspace");
	printf("device %u ", info->listen_port);
	printf(info->fwmark ? "0x%x\n" : "off\n", info->fwmark);
	for (size_t i = 0; i < info->n_peers; i++) {
		const struct wg_peer_info *p = &info->peers[i];

		key_to_base64(key, p->public_key);
		if (p->has_endpoint)
			sockaddr_inet_format(&p->endpoint, endpoint, sizeof(endpoint));
		printf("peer %s %s %s ", key, p->has_preshared_key ? "set" : "(none)",
		       p->has_endpoint ? endpoint : "(none)");
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			ip_prefix_format(&p->allowed_ips[j], prefix, sizeof(prefix));
			printf("%s%s", j ? "," : "", prefix);
		}
		if (!p->n_allowed_ips)
			fputs("(none)", stdout);
		printf(" %lld %llu %llu ", (long long)p->last_handshake.tv_sec,
		       (unsigned long long)p->rx_bytes, (unsigned long long)p->tx_bytes);
		printf(p->persistent_keepalive ? "%u\n" : "off\n", p->persistent_keepalive);
	}
	puts("end");
	fflush(stdout);
	wg_device_info_free(info);
	return 0;
}

int main(int argc, char **argv)
{
	struct diag_list diags = { 0 };
	struct device *d = NULL;
	struct conf *c = NULL;
	struct errbuf e;
	sigset_t sigs;
	int sig, status = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: %s CONF IFNAME\n", argv[0]);
		return 2;
	}
	log_init("wgrp-devtool", 0);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);

	if (conf_load(&c, argv[1], &diags) < 0 || conf_resolve_endpoints(c, &diags) < 0)
		goto out;
	if (device_up(&d, c, argv[2], "wgrp-devtool", &diags, &e) < 0) {
		log_error("%s", e.msg);
		goto out;
	}
	log_diags(&diags);
	diag_list_clear(&diags);
	do {
		if (print_device(d) < 0)
			goto out;
	} while (sigwait(&sigs, &sig) == 0 && sig == SIGUSR1);
	status = 0;
out:
	log_diags(&diags);
	device_down(d);
	conf_free(c);
	diag_list_clear(&diags);
	return status;
}
