/* Signs an API request as rpc does, for the namespace tests: prints the three
 * signature headers, one "Name: value" line each, for curl -H.
 *
 * usage: wgrp-sign PRIVATE_KEY_FILE PEER_PUBLIC_KEY METHOD TARGET [BODY [TIMESTAMP]]
 *
 * PRIVATE_KEY_FILE holds a key as wg genkey prints it; PEER_PUBLIC_KEY is
 * the other side's, as wg pubkey prints it; TARGET is the path and query as
 * sent; TIMESTAMP (default: now) lets a test sign for another time. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wgrp/auth.h"

int main(int argc, char **argv)
{
	uint8_t private_key[WG_KEY_LEN], public_key[WG_KEY_LEN], key[AUTH_KEY_LEN];
	char line[WG_KEY_B64_LEN + 8] = "", ts[24], nonce[AUTH_NONCE_HEX_LEN + 1];
	char sig[AUTH_MAC_HEX_LEN + 1];
	const char *body = argc > 5 ? argv[5] : "";
	int64_t now = argc > 6 ? strtoll(argv[6], NULL, 10) : (int64_t)time(NULL);
	struct errbuf e;
	FILE *f;

	if (argc < 5 || argc > 7) {
		fprintf(stderr, "usage: %s PRIVATE_KEY_FILE PEER_PUBLIC_KEY METHOD TARGET [BODY [TIMESTAMP]]\n",
			argv[0]);
		return 2;
	}
	f = fopen(argv[1], "r");
	if (!f || !fgets(line, sizeof(line), f)) {
		fprintf(stderr, "%s: cannot read\n", argv[1]);
		return 1;
	}
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	if (key_from_base64(private_key, line, &e) < 0 ||
	    key_from_base64(public_key, argv[2], &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		return 1;
	}
	if (auth_derive_key(key, private_key, public_key) < 0 ||
	    auth_sign(ts, nonce, sig, key, argv[3], argv[4], body, strlen(body), now) < 0) {
		fprintf(stderr, "cannot sign\n");
		return 1;
	}
	printf("%s: %s\n%s: %s\n%s: %s\n", AUTH_HEADER_TIMESTAMP, ts, AUTH_HEADER_NONCE, nonce,
	       AUTH_HEADER_SIGNATURE, sig);
	return 0;
}
