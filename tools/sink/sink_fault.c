/* sink_fault — riptide-sink's per-command fault rules: parsing of --reply, --drop-after,
 * --421-after (and -g) into a rule table per SMTP step, and the choice of the rule that fires.
 *
 * Why: a test of a sender needs a receiver that misbehaves at one chosen step (a 452 to RCPT, a
 * 554 after the dot, a hang-up after MAIL), sometimes only now and then so one run mixes
 * behaviours; Postfix's smtp-sink has this with -r/-f/-q/-Q for whole commands. Here each step
 * has an ordered list of rules; a rule may fire on every Nth occurrence ("rcpt/3") and/or with a
 * probability ("rcpt%25"). The table is filled before the workers start and only read after,
 * except for each rule's occurrence counter (atomic: all workers share it).
 */
#include "tools/sink/sink.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const sink_step_names[SINK_NSTEPS] = {
    [SINK_STEP_CONNECT] = "connect", [SINK_STEP_HELO] = "ehlo", [SINK_STEP_MAIL] = "mail",
    [SINK_STEP_RCPT] = "rcpt",	     [SINK_STEP_DATA] = "data", [SINK_STEP_DOT] = "dot",
};

/* The step named by the n bytes at p ("helo" and "." are aliases), or -1. */
static int sink_step_lookup(const char *p, size_t n)
{
	if (n == 4 && strncasecmp(p, "helo", 4) == 0)
		return SINK_STEP_HELO;
	if (n == 1 && *p == '.')
		return SINK_STEP_DOT;
	for (int i = 0; i < SINK_NSTEPS; i++)
		if (strlen(sink_step_names[i]) == n && strncasecmp(p, sink_step_names[i], n) == 0)
			return i;
	return -1;
}

/* A decimal number in [lo, hi] at *p (advanced past it). 0 or -EINVAL. */
static int sink_spec_num(const char **p, const char *end, unsigned lo, unsigned hi, unsigned *out)
{
	unsigned long v = 0;
	const char *q = *p;

	while (q < end && isdigit((unsigned char)*q) && v <= hi)
		v = v * 10 + (unsigned long)(*q++ - '0');
	if (q == *p || v < lo || v > hi)
		return -EINVAL;
	*p = q;
	*out = (unsigned)v;
	return 0;
}

/* Parse "STEP[/N][%P]" (the n bytes at p) into *step and f's every/pct. 0 or -EINVAL. */
static int sink_spec_step(const char *p, size_t n, int *step, struct sink_fault *f)
{
	const char *end = p + n, *q = p;
	int ret = 0;

	while (q < end && *q != '/' && *q != '%')
		q++;
	*step = sink_step_lookup(p, (size_t)(q - p));
	f->every = 1;
	f->pct = 100;
	while (!ret && q < end) {
		char mod = *q++;

		if (mod == '/' && f->every == 1)
			ret = sink_spec_num(&q, end, 2, 1000000000u, &f->every);
		else if (mod == '%' && f->pct == 100)
			ret = sink_spec_num(&q, end, 1, 99, &f->pct);
		else
			ret = -EINVAL;
	}
	return *step < 0 ? -EINVAL : ret;
}

/* The built-in reply text for code at step. */
static const char *sink_default_text(int step, int code)
{
	if (code == 354)
		return "End data with <CR><LF>.<CR><LF>";
	if (code < 300)
		return "2.0.0 Ok";
	if (step == SINK_STEP_CONNECT)
		return code < 500 ? "4.3.2 Service not available" : "5.3.2 Service not available";
	if (code == 421)
		return "4.3.0 Error: closing connection";
	return code < 500 ? "4.3.0 Error: command failed" : "5.3.0 Error: command failed";
}

/* Whether code is a reply the step can give: 3xx only to DATA (354), 2xx everywhere else. */
static bool sink_code_ok(int step, int code)
{
	if (code < 200 || code > 599)
		return false;
	if (step == SINK_STEP_DATA)
		return code == 354 || code >= 400;
	return code / 100 != 3;
}

/* Append rule f to step's list. 0, or -E2BIG when the step has SINK_MAX_RULES already. */
static int sink_fault_add(struct sink_opts *o, int step, const struct sink_fault *f)
{
	struct sink_fault *d;

	if (o->nfault[step] == SINK_MAX_RULES)
		return -E2BIG;
	d = &o->fault[step][o->nfault[step]++];
	d->code = f->code;
	d->text = f->text;
	d->every = f->every;
	d->pct = f->pct;
	atomic_init(&d->seen, 0);
	return 0;
}

/* sink_fault_reply: parse "STEP[/N][%P]=CODE[:TEXT]" (--reply) and add the rule to o. arg is
 * kept (TEXT points into it). Returns 0, -EINVAL (syntax, code not valid for the step, control
 * byte in TEXT) or -E2BIG (too many rules for the step). */
int sink_fault_reply(struct sink_opts *o, const char *arg)
{
	const char *eq = strchr(arg, '='), *p, *colon;
	struct sink_fault f = {0};
	unsigned code;
	int step;

	if (!eq || sink_spec_step(arg, (size_t)(eq - arg), &step, &f) < 0)
		return -EINVAL;
	p = eq + 1;
	colon = strchr(p, ':');
	if (sink_spec_num(&p, colon ? colon : p + strlen(p), 200, 599, &code) < 0 ||
	    (colon ? p != colon : *p != '\0') || !sink_code_ok(step, (int)code))
		return -EINVAL;
	f.code = (int)code;
	f.text = colon && colon[1] ? colon + 1 : sink_default_text(step, f.code);
	for (p = f.text; *p; p++)
		if (iscntrl((unsigned char)*p))
			return -EINVAL;
	return sink_fault_add(o, step, &f);
}

/* sink_fault_after: parse "STEP[/N][%P][,STEP...]" (--drop-after when code is 0, --421-after
 * when 421) and add one rule per listed step: close without a reply, or a 421 and close.
 * Returns 0, -EINVAL or -E2BIG. */
int sink_fault_after(struct sink_opts *o, const char *arg, int code)
{
	const char *p = arg, *comma;
	struct sink_fault f;
	int step, ret;

	do {
		comma = strchr(p, ',');
		f = (struct sink_fault){.code = code};
		if (sink_spec_step(p, comma ? (size_t)(comma - p) : strlen(p), &step, &f) < 0)
			return -EINVAL;
		f.text = code ? sink_default_text(step, code) : NULL;
		ret = sink_fault_add(o, step, &f);
		if (ret < 0)
			return ret;
		p = comma + 1;
	} while (comma);
	return 0;
}

/* sink_fault_greet: -g CODE: a rejection at the greeting (CODE >= 400) becomes a connect rule;
 * CODE 200..399 keeps the normal greeting. Returns 0, -EINVAL or -E2BIG. */
int sink_fault_greet(struct sink_opts *o, int code)
{
	struct sink_fault f = {.code = code, .every = 1, .pct = 100};

	if (code < 200 || code > 599)
		return -EINVAL;
	if (code < 400)
		return 0;
	f.text = sink_default_text(SINK_STEP_CONNECT, code);
	return sink_fault_add(o, SINK_STEP_CONNECT, &f);
}

/* xorshift64* step of the worker's generator: a number in [0, 100). */
static unsigned sink_rand100(struct sink_worker *w)
{
	uint64_t x = w->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return (unsigned)(((x * 0x2545f4914f6cdd1dull) >> 32) % 100);
}

/* sink_fault_pick: the first rule of step that fires for this occurrence (each rule with /N
 * counts the occurrences that reach it, process-wide), or NULL. Worker w's loop thread. */
const struct sink_fault *sink_fault_pick(struct sink_worker *w, enum sink_step step)
{
	struct sink_fault *f = sink_g.o.fault[step];

	for (unsigned i = 0; i < sink_g.o.nfault[step]; i++, f++) {
		if (f->every > 1 &&
		    (atomic_fetch_add_explicit(&f->seen, 1, memory_order_relaxed) + 1) % f->every)
			continue;
		if (f->pct < 100 && sink_rand100(w) >= f->pct)
			continue;
		return f;
	}
	return NULL;
}
