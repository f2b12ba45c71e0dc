/* rpc: the WireGuard interface, a relay listener on the tunnel address for
 * each route, and the registrations and heartbeats that keep rps mapping
 * them, repaired whenever rps restarts or forgets one. */
#pragma once

#include "wgrp/cli.h"
#include "wgrp/conf.h"

/* Runs rpc until SIGINT or SIGTERM; takes c over. Returns the exit status. */
int client_run(const struct options *o, struct conf *c);

/* The API's default address: the first host of the first peer's first
 * AllowedIPs network (10.0.0.0/24 gives 10.0.0.1). Returns 0, or -ENOENT
 * when the config has no AllowedIPs to take it from. */
int client_default_server(const struct conf *c, struct ip_addr *out);
