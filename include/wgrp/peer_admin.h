/* rps's commands that edit its config instead of running: `rps add-client`
 * and `rps remove-client`. They work on the file alone, rps running or not. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

struct cli_program;

/* Whether arg (argv[1]) names one of these commands. */
bool peer_admin_command(const char *arg);

/* The usage lines of the commands, each after indent, for p's usage text. */
void peer_admin_usage_lines(FILE *f, const struct cli_program *p, const char *indent);

/* Runs the command argv[0] with its arguments; returns the exit status. */
int peer_admin_main(const struct cli_program *p, int argc, char **argv);
