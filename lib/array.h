/* Growable arrays whose capacity follows from their length: they grow in
 * powers of two from 4, so a (pointer, count) pair needs no capacity field. */
#pragma once

#include <errno.h>
#include <stdlib.h>

/* Makes room for element n of the array *items (of elements of size bytes)
 * that holds n elements now. Returns 0 or -ENOMEM (the array is unchanged). */
static inline int array_reserve(void *items, size_t n, size_t size)
{
	void **v = items, *grown;

	if (n != 0 && (n < 4 || (n & (n - 1))))
		return 0;
	grown = reallocarray(*v, n ? n * 2 : 4, size);
	if (!grown)
		return -ENOMEM;
	*v = grown;
	return 0;
}
