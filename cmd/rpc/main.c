#include "wgrp/cli.h"
#include "wgrp/client.h"

static const struct cli_program program = {
	.name = "rpc",
	.default_config = "wg-client.conf",
	.role = CLI_CLIENT,
	.run = client_run,
};

int main(int argc, char **argv)
{
	return cli_main(&program, argc, argv);
}
