/*
 * array.h: growing a heap array by doubling, for the game thread's
 * scratch and per-player lists.
 */
#ifndef GAMESRV_ARRAY_H
#define GAMESRV_ARRAY_H

#include <errno.h>
#include <stdlib.h>

/*
 * Make *buf (of *cap elements of elem bytes) hold at least n, doubling
 * from 16. Returns 0, or -ENOMEM with *buf and *cap unchanged.
 */
static inline int array_grow(void **buf, size_t *cap, size_t n, size_t elem)
{
	size_t c = *cap ? *cap : 16;
	void *p;

	if (n <= *cap)
		return 0;
	while (c < n)
		c *= 2;
	p = realloc(*buf, c * elem);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = c;
	return 0;
}

#endif /* GAMESRV_ARRAY_H */
