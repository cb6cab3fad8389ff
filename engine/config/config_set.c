/* config_set — parsing and formatting one configuration value of each key type.
 *
 * Why a file of its own: config.c holds the key table, the INI machinery and the rules across
 * keys; the setters are small pure functions of (row, text) and read best together. The
 * rules for strings (no leading ';', KF_TOKEN, ...) are explained at the top of config.c.
 */
#include "engine/config/config_int.h"
#include "engine/config/config_val.h"
#include "engine/util/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

static const char *const mode_names[] = {
    [CONFIG_MODE_RELAY] = "relay", [CONFIG_MODE_INDEPENDENT] = "independent", NULL};
static const char *const original_names[] = {
    [CONFIG_DSN_FULL] = "full", [CONFIG_DSN_HEADERS] = "headers", [CONFIG_DSN_NONE] = "none", NULL};
static const char *const tls_names[] = {[CONFIG_TLS_NONE] = "none",
					[CONFIG_TLS_OPPORTUNISTIC] = "opportunistic",
					[CONFIG_TLS_REQUIRED] = "required",
					[CONFIG_TLS_SMTPS] = "smtps",
					NULL};
static const char *const verify_names[] = {
    [CONFIG_VERIFY_AUTO] = "auto", [CONFIG_VERIFY_NONE] = "none", [CONFIG_VERIFY_CA] = "ca", NULL};
static const char *const sender_names[] = {[CONFIG_SENDER_ANY] = "any",
					   [CONFIG_SENDER_OWN_ADDRESS] = "own_address",
					   [CONFIG_SENDER_OWN_DOMAIN] = "own_domain",
					   NULL};
static const char *const action_names[] = {[CONFIG_BACKOFF_SUSPEND] = "suspend",
					   [CONFIG_BACKOFF_REDUCE] = "reduce",
					   [CONFIG_BACKOFF_BOUNCE] = "bounce",
					   NULL};
/* KT_ENUM name tables (NULL-terminated), by key.min */
static const char *const *const enum_tables[] = {
    [ENUM_MODE] = mode_names,	  [ENUM_ORIGINAL] = original_names, [ENUM_TLS] = tls_names,
    [ENUM_VERIFY] = verify_names, [ENUM_SENDER] = sender_names,	    [ENUM_ACTION] = action_names};

static const char *const bool_true[] = {"yes", "true", "on", "1"};
static const char *const bool_false[] = {"no", "false", "off", "0"};

/* ---- value setters: each returns 0, or -EINVAL with the reason in why ---- */

static int in_list(const char *v, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v, list[i]) == 0)
			return 1;
	return 0;
}

static int check_range(const struct key *k, uint64_t v, char *why, size_t wl)
{
	if (v >= k->min && v <= k->max)
		return 0;
	snprintf(why, wl, "%" PRIu64 " is out of range %" PRIu64 "..%" PRIu64, v, k->min, k->max);
	return -EINVAL;
}

/* util_parse_* do not check overflow: the leading number of v must not overflow once scaled
 * by the bare-number unit, or by the largest suffix (1d, 1G) when there is a suffix. */
static int scaled_fits(const char *v, uint64_t bare_unit, uint64_t largest_unit)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 10);
	return errno == 0 && n <= UINT64_MAX / (*end ? largest_unit : bare_unit);
}

static int set_uint(const struct key *k, void *field, const char *v, char *why, size_t wl)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (!isdigit((unsigned char)v[0]) || *end != '\0' || errno || n > UINT32_MAX) {
		snprintf(why, wl, "'%s' is not a number", v);
		return -EINVAL;
	}
	if (check_range(k, n, why, wl))
		return -EINVAL;
	*(unsigned *)field = (unsigned)n;
	return 0;
}

static int set_scaled(const struct key *k, void *field, const char *v, char *why, size_t wl)
{
	bool dur = k->type == KT_DURATION;
	uint64_t n;
	int ret;

	if (!scaled_fits(v, dur ? MS_S : 1, dur ? MS_D : GIB))
		ret = -EINVAL;
	else
		ret = dur ? util_parse_duration_ms(v, &n) : util_parse_size(v, &n);
	if (ret < 0) {
		snprintf(why, wl,
			 dur ? "'%s' is not a duration (e.g. 250ms, 30s, 5m, 1h, 2d)"
			     : "'%s' is not a size (e.g. 1024, 64k, 10M, 2G)",
			 v);
		return -EINVAL;
	}
	if (check_range(k, n, why, wl))
		return -EINVAL;
	*(uint64_t *)field = n;
	return 0;
}

static int set_bool(void *field, const char *v, char *why, size_t wl)
{
	if (in_list(v, bool_true, ARRAY_SIZE(bool_true))) {
		*(bool *)field = true;
		return 0;
	}
	if (in_list(v, bool_false, ARRAY_SIZE(bool_false))) {
		*(bool *)field = false;
		return 0;
	}
	snprintf(why, wl, "'%s' is not a boolean (yes/no, true/false, on/off, 1/0)", v);
	return -EINVAL;
}

static int set_enum(const struct key *k, void *field, const char *v, char *why, size_t wl)
{
	const char *const *names = enum_tables[k->min];
	size_t used = 0;

	for (unsigned i = 0; names[i]; i++) {
		if (strcmp(v, names[i]) == 0) {
			*(unsigned *)field = i;
			return 0;
		}
	}
	used = (size_t)snprintf(why, wl, "'%s' is not one of:", v);
	for (unsigned i = 0; names[i] && used < wl; i++)
		used += (size_t)snprintf(why + used, wl - used, " %s", names[i]);
	return -EINVAL;
}

static int set_factor(const struct key *k, double *field, const char *v, char *why, size_t wl)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !(d >= (double)k->min && d <= (double)k->max)) {
		snprintf(why, wl, "'%s' is not a number from %" PRIu64 " to %" PRIu64, v, k->min,
			 k->max);
		return -EINVAL;
	}
	*field = d;
	return 0;
}

/* A host name with optional :port (KF_NAME): numeric hosts must pass util_addr_parse. */
static bool host_name_port_ok(const char *v)
{
	char host[UTIL_HOST_MAX];
	uint16_t port;

	return util_hostport_parse(v, host, sizeof(host), &port, 25) == 0 &&
	       !util_host_is_numeric(host);
}

static int check_addr(const struct key *k, const char *v, char *why, size_t wl)
{
	struct util_addr a;
	int bad = util_addr_parse(v, &a) < 0;

	if (!bad && (k->flags & KF_UNIX))
		bad = v[0] != '/';
	if (!bad && (k->flags & KF_TCP))
		bad = a.family == AF_UNIX;
	if (!bad && (k->flags & KF_PORT))
		bad = ((struct sockaddr_in *)&a.ss)->sin_port == 0; /* same offset in sin6 */
	if (bad && (k->flags & KF_NAME))
		bad = !host_name_port_ok(v);
	if (!bad)
		return 0;
	if (k->flags & KF_UNIX)
		snprintf(why, wl, "'%s' is not an absolute UNIX socket path (max %zu bytes)", v,
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	else if (k->flags & KF_NAME)
		snprintf(why, wl,
			 "'%s' is not a host:port address (IPv4:port, [IPv6]:port, or a host name "
			 "with optional :port, default 25; port 1..65535)",
			 v);
	else
		snprintf(why, wl, "'%s' is not a host:port address (IPv4 or [IPv6], port%s)", v,
			 (k->flags & KF_PORT) ? " 1..65535" : " 0..65535");
	return -EINVAL;
}

static int set_str(const struct key *k, void *field, const char *v, size_t max, char *why,
		   size_t wl)
{
	size_t n = strlen(v);

	if (n > max) {
		snprintf(why, wl, "value is too long (%zu bytes, max %zu)", n, max);
		return -EINVAL;
	}
	if (n == 0 && !(k->flags & KF_EMPTY_OK)) {
		snprintf(why, wl, "value must not be empty");
		return -EINVAL;
	}
	if (v[0] == ';') { /* see the top of this file */
		snprintf(why, wl, "'%s' starts with ';', which reads back as a comment", v);
		return -EINVAL;
	}
	for (size_t i = 0; (k->flags & KF_TOKEN) && i < n; i++) {
		if (isspace((unsigned char)v[i]) || iscntrl((unsigned char)v[i])) {
			snprintf(why, wl, "'%s' must not contain blanks or control characters", v);
			return -EINVAL;
		}
	}
	if (k->type == KT_ADDR && n > 0 && check_addr(k, v, why, wl) < 0)
		return -EINVAL;
	if ((k->flags & KF_DNS) && config_val_dns_servers(v, why, wl) < 0)
		return -EINVAL;
	if ((k->flags & KF_NETS) && config_val_networks(v, why, wl) < 0)
		return -EINVAL;
	if ((k->flags & KF_DOMAINS) && config_val_domains(v, why, wl) < 0)
		return -EINVAL;
	if ((k->flags & KF_HOSTS) && n > 0 && config_val_hosts(v, why, wl) < 0)
		return -EINVAL;
	memcpy(field, v, n + 1);
	return 0;
}

/* source_address: the string as given, and its literals parsed for the daemon's bind(). */
static int set_source(const struct key *k, struct config *c, const char *v, size_t max, char *why,
		      size_t wl)
{
	struct util_addr v4, v6;

	if (set_str(k, (char *)c + k->off, v, max, why, wl) < 0 ||
	    config_val_source(v, &v4, &v6, why, wl) < 0)
		return -EINVAL;
	c->source_v4 = v4;
	c->source_v6 = v6;
	return 0;
}

static int set_rate(void *field, const char *v, char *why, size_t wl)
{
	if (config_rate_parse(v, field) == 0)
		return 0;
	snprintf(why, wl,
		 "'%s' is not a rate (e.g. 500/h, 60/m, 10/s, or 10 = per second; 0 = no "
		 "limit)",
		 v);
	return -EINVAL;
}

/* config_key_set: see config_int.h. */
int config_key_set(const struct key *k, void *base, const char *v, size_t str_max, char *why,
		   size_t wl)
{
	void *field = (char *)base + k->off;

	switch (k->type) {
	case KT_UINT:
		return set_uint(k, field, v, why, wl);
	case KT_BOOL:
		return set_bool(field, v, why, wl);
	case KT_DURATION:
	case KT_SIZE:
		return set_scaled(k, field, v, why, wl);
	case KT_ENUM:
		return set_enum(k, field, v, why, wl);
	case KT_FACTOR:
		return set_factor(k, field, v, why, wl);
	case KT_STR:
	case KT_ADDR:
		return set_str(k, field, v, str_max, why, wl);
	case KT_SOURCE:
		return set_source(k, base, v, str_max, why, wl);
	case KT_RATE:
		return set_rate(field, v, why, wl);
	}
	BUG_ON(1);
	return -EINVAL;
}

/* ---- formatting (config_print) ---- */

static void fmt_scaled(uint64_t v, bool dur, char *buf, size_t len)
{
	static const uint64_t dmul[] = {MS_D, MS_H, MS_MIN, MS_S};
	static const char *const dsuf[] = {"d", "h", "m", "s"};
	static const uint64_t smul[] = {GIB, MIB, KIB};
	static const char *const ssuf[] = {"G", "M", "k"};
	const uint64_t *mul = dur ? dmul : smul;
	const char *const *suf = dur ? dsuf : ssuf;
	size_t n = dur ? ARRAY_SIZE(dmul) : ARRAY_SIZE(smul);

	for (size_t i = 0; i < n && v != 0; i++) {
		if (v % mul[i] == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", v / mul[i], suf[i]);
			return;
		}
	}
	snprintf(buf, len, "%" PRIu64 "%s", v, dur ? "ms" : "");
}

/* config_key_format: see config_int.h. */
void config_key_format(const struct key *k, const void *base, char *buf, size_t len)
{
	const void *field = (const char *)base + k->off;

	switch (k->type) {
	case KT_UINT:
		snprintf(buf, len, "%u", *(const unsigned *)field);
		break;
	case KT_BOOL:
		snprintf(buf, len, "%s", *(const bool *)field ? "yes" : "no");
		break;
	case KT_DURATION:
	case KT_SIZE:
		fmt_scaled(*(const uint64_t *)field, k->type == KT_DURATION, buf, len);
		break;
	case KT_ENUM:
		snprintf(buf, len, "%s", enum_tables[k->min][*(const unsigned *)field]);
		break;
	case KT_FACTOR:
		snprintf(buf, len, "%g", *(const double *)field);
		break;
	case KT_STR:
	case KT_ADDR:
	case KT_SOURCE:
		snprintf(buf, len, "%s", (const char *)field);
		break;
	case KT_RATE:
		config_rate_format(field, buf, len);
		break;
	}
}

/* ---- rates ---- */

static const struct {
	const char *name;
	uint64_t per_ms;
} rate_units[] = {{"s", MS_S},	   {"sec", MS_S},      {"second", MS_S}, {"m", MS_MIN},
		  {"min", MS_MIN}, {"minute", MS_MIN}, {"h", MS_H},	 {"hour", MS_H}};

/* config_rate_parse: see config.h. */
int config_rate_parse(const char *s, struct config_rate *out)
{
	unsigned long long n;
	uint64_t per_ms = 0;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || n > UINT32_MAX)
		return -EINVAL;
	if (*end == '\0')
		per_ms = MS_S;
	for (size_t i = 0; *end == '/' && i < ARRAY_SIZE(rate_units); i++)
		if (strcasecmp(end + 1, rate_units[i].name) == 0)
			per_ms = rate_units[i].per_ms;
	if (!per_ms)
		return -EINVAL;
	out->n = (uint32_t)n;
	out->per_ms = n ? per_ms : MS_S; /* one "no limit" */
	return 0;
}

/* config_rate_format: see config.h. */
void config_rate_format(const struct config_rate *r, char *buf, size_t len)
{
	const char *unit = r->per_ms == MS_H ? "h" : r->per_ms == MS_MIN ? "m" : "s";

	if (r->n == 0)
		snprintf(buf, len, "0");
	else
		snprintf(buf, len, "%" PRIu32 "/%s", r->n, unit);
}
