#include "wgrp/cli.h"

static const struct cli_program program = {
	.name = "rpc",
	.default_config = "wg-client.conf",
	.takes_routes = true,
};

int main(int argc, char **argv)
{
	return cli_main(&program, argc, argv);
}
