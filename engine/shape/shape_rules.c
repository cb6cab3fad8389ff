/* shape_rules — backoff rules compiled once and matched against remote replies.
 *
 * Why: a reply such as Gmail's "421 4.7.28 ... unusual rate" must be recognised on every
 * deferral from any shard. Rules are copied (the config may be reloaded and freed), their
 * enhanced code parsed to numbers and their text compiled as a case-insensitive POSIX ERE
 * without sub-matches; matching tests the cheap fields first and runs the regex last, on the
 * reply's bytes in place (REG_STARTEND: no copy, no NUL needed).
 */
#include "engine/shape/shape.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "engine/util/util.h"

struct shape_rule {
	struct config_backoff c;
	int enh[3];   /* parsed c.enhanced */
	bool has_enh; /* c.enhanced not "" */
	bool has_re;  /* c.text not "" */
	regex_t re;
};

struct shape_rules {
	unsigned n;
	struct shape_rule r[];
};

/* Parse one number of an enhanced code (1..3 digits) at *p, moving *p past it; -1 if none. */
static int enh_num(const char **p)
{
	int v = 0, digits = 0;

	while (**p >= '0' && **p <= '9' && digits < 4) {
		v = v * 10 + (**p - '0');
		(*p)++;
		digits++;
	}
	return digits >= 1 && digits <= 3 ? v : -1;
}

/* Parse "C.S.D" (class 2, 4 or 5; subject and detail 0..999) into enh. Returns 0 or -EINVAL. */
static int enh_parse(const char *s, int enh[3])
{
	const char *p = s;

	for (int i = 0; i < 3; i++) {
		enh[i] = enh_num(&p);
		if (enh[i] < 0 || (i < 2 && *p++ != '.'))
			return -EINVAL;
	}
	if (*p || (enh[0] != 2 && enh[0] != 4 && enh[0] != 5))
		return -EINVAL;
	return 0;
}

/* Compile one enabled rule c into r. Returns 0, or -EINVAL with err filled. */
static int rule_compile(struct shape_rule *r, const struct config_backoff *c, char *err,
			size_t errlen)
{
	int rc;

	r->c = *c;
	r->has_enh = c->enhanced[0] != '\0';
	if (r->has_enh && enh_parse(c->enhanced, r->enh) != 0) {
		snprintf(err, errlen, "backoff %s: bad enhanced code '%s'", c->name, c->enhanced);
		return -EINVAL;
	}
	if (c->action == CONFIG_BACKOFF_REDUCE && !(c->factor > 0.0 && c->factor <= 1.0)) {
		snprintf(err, errlen, "backoff %s: factor must be in (0, 1]", c->name);
		return -EINVAL;
	}
	r->has_re = c->text[0] != '\0';
	if (!r->has_re)
		return 0;
	rc = regcomp(&r->re, c->text, REG_EXTENDED | REG_ICASE | REG_NOSUB);
	if (rc != 0) {
		char msg[128];

		regerror(rc, &r->re, msg, sizeof(msg));
		snprintf(err, errlen, "backoff %s: bad text regex: %s", c->name, msg);
		r->has_re = false;
		return -EINVAL;
	}
	return 0;
}

/* shape_rules_new: see shape.h. */
struct shape_rules *shape_rules_new(const struct config_backoff *rules, unsigned n, char *err,
				    size_t errlen)
{
	struct shape_rules *set = util_xcalloc(1, sizeof(*set) + n * sizeof(set->r[0]));

	for (unsigned i = 0; i < n; i++) {
		if (!rules[i].enabled)
			continue;
		if (rule_compile(&set->r[set->n], &rules[i], err, errlen) != 0) {
			shape_rules_free(set);
			return NULL;
		}
		set->n++;
	}
	return set;
}

/* shape_rules_free: see shape.h. */
void shape_rules_free(struct shape_rules *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->n; i++)
		if (r->r[i].has_re)
			regfree(&r->r[i].re);
	free(r);
}

/* Does rule r match the reply? */
static bool rule_match(const struct shape_rule *r, int code, const int enh[3], const char *text,
		       size_t len)
{
	regmatch_t m[1];

	if (r->c.code != 0 && (int)r->c.code != code)
		return false;
	if (r->has_enh && (enh[0] != r->enh[0] || enh[1] != r->enh[1] || enh[2] != r->enh[2]))
		return false;
	if (!r->has_re)
		return true;
	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t)len;
	return regexec(&r->re, text ? text : "", 1, m, REG_STARTEND) == 0;
}

/* The reply text as a C string: regexec with REG_STARTEND keeps within len, but sanitizers'
 * regexec wrappers read up to a NUL (a reply in smtpc's buffer has none). Replies are short
 * (RFC 5321: 512 bytes a line); a longer one is matched on its first SHAPE_TEXT_MAX bytes. */
#define SHAPE_TEXT_MAX 4096
static const char *rule_text(const char *text, size_t *len, char *buf)
{
	if (!text)
		text = "";
	if (*len > SHAPE_TEXT_MAX - 1)
		*len = SHAPE_TEXT_MAX - 1;
	memcpy(buf, text, *len);
	buf[*len] = '\0';
	return buf;
}

/* shape_rules_match: see shape.h. */
const struct config_backoff *shape_rules_match(const struct shape_rules *r, int code,
					       const int enh[3], const char *text, size_t len)
{
	static const int none[3] = {0, 0, 0};
	char buf[SHAPE_TEXT_MAX];

	if (!r)
		return NULL;
	text = rule_text(text, &len, buf);
	for (unsigned i = 0; i < r->n; i++)
		if (rule_match(&r->r[i], code, enh ? enh : none, text, len))
			return &r->r[i].c;
	return NULL;
}
