/* shape_fx — helpers shared by the engine/shape unit tests: rule fixtures and the window check.
 *
 * Why: "the rate holds over ANY window" is checked the same way in the single- and
 * multi-threaded tests: the densest window of length W starts at an event, so counting from
 * every event is exhaustive.
 */
#ifndef RIPTIDE_SHAPE_FX_H
#define RIPTIDE_SHAPE_FX_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/shape/shape.h"

static inline int fx_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The largest number of the n (sorted) event times in a half-open window [t, t + w) (*open)
 * and in a closed one [t, t + w] (*closed). */
static inline void fx_max_window(const uint64_t *ts, size_t n, uint64_t w, size_t *open,
				 size_t *closed)
{
	size_t j = 0, k = 0;

	*open = *closed = 0;
	for (size_t i = 0; i < n; i++) {
		if (j < i)
			j = i;
		if (k < i)
			k = i;
		while (j < n && ts[j] < ts[i] + w)
			j++;
		while (k < n && ts[k] <= ts[i] + w)
			k++;
		if (j - i > *open)
			*open = j - i;
		if (k - i > *closed)
			*closed = k - i;
	}
}

/* A backoff rule with the usual defaults. */
static inline struct config_backoff fx_rule(const char *name, unsigned code, const char *enh,
					    const char *text, enum config_backoff_action action)
{
	struct config_backoff b;

	memset(&b, 0, sizeof(b));
	strcpy(b.name, name);
	b.enabled = true;
	b.code = code;
	strcpy(b.enhanced, enh);
	strcpy(b.text, text);
	b.action = action;
	b.duration_ms = 600000;
	b.factor = 0.5;
	b.recover_steps = 4;
	b.recover_interval_ms = 60000;
	return b;
}

#endif
