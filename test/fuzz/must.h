/* Checks of the fuzz targets' properties. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

/* Unlike assert(), kept in release builds, where the replay test runs. */
#define must(x)                                                            \
	do {                                                               \
		if (!(x)) {                                                \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x); \
			abort();                                           \
		}                                                          \
	} while (0)
