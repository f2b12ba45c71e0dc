#include "wgrp/cli.h"
#include "wgrp/server.h"

static const struct cli_program program = {
	.name = "rps",
	.default_config = "wg-server.conf",
	.role = CLI_SERVER,
	.run = server_run,
};

int main(int argc, char **argv)
{
	return cli_main(&program, argc, argv);
}
