/* rps: the WireGuard interface, the API on its tunnel addresses, and a relay
 * listener for each port clients map. */
#pragma once

#include "wgrp/cli.h"
#include "wgrp/conf.h"

/* Runs rps until SIGINT or SIGTERM; takes c over. Returns the exit status. */
int server_run(const struct options *o, struct conf *c);
