#include "wgrp/cli.h"

static const struct cli_program program = {
	.name = "rps",
	.default_config = "wg-server.conf",
	.takes_routes = false,
};

int main(int argc, char **argv)
{
	return cli_main(&program, argc, argv);
}
