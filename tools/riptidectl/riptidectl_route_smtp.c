/* riptidectl_route_smtp — test-route's SMTP dialogue with one target, step by step.
 *
 * Why it follows the daemon rather than a generic client: the point of test-route is to tell
 * an operator what riptide would meet. So the decisions are the daemon's (engine/smtpc): EHLO,
 * HELO after a 5xx to EHLO; STARTTLS by [delivery] tls (refused or absent: plaintext when
 * opportunistic, a failure when required; plaintext behind the 220 refused, RFC 3207), the
 * EHLO answer forgotten and asked again after TLS; TLS on connect for smtps; the certificate
 * name is the MX host or the relay's host. AUTH (PLAIN, else LOGIN) only over TLS unless
 * auth_plaintext = yes. Each step prints one line: its time in ms, what was sent (AUTH
 * masked: "AUTH PLAIN ****") and the server's reply, continuation lines indented under it.
 */
#include "tools/riptidectl/riptidectl_conn.h"
#include "tools/riptidectl/riptidectl_route.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define COL 40 /* where replies start: "  " + "%8.1f ms" + "  " + the label column */

/* One attempt. */
struct rsess {
	struct riptidectl_route_run *r;
	const struct riptidectl_target *t;
	struct riptidectl_conn *c;
	bool usable;	   /* the connection can still carry QUIT */
	bool use_tls;	   /* TLS as configured (false: the plaintext retry of opportunistic) */
	bool tls_on;	   /* encrypted now */
	uint32_t ext;	   /* SMTP_EXT_* of the last EHLO answer */
	bool plain, login; /* AUTH mechanisms offered */
	char mechs[128];   /* the AUTH line as offered, for messages */
	struct riptidectl_reply rep;
};

/* ---- printing ---- */

/* Print n bytes, control bytes and 8-bit bytes as '?'. */
static void put_text(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		putchar((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f ? '?' : p[i]);
}

/* The start of a step line: time (none when ms < 0: a decision, not an exchange) and label
 * padded to the reply column. */
static void step_head(double ms, const char *label)
{
	int n = ms < 0 ? printf("  %11s  %s", "", label) : printf("  %8.1f ms  %s", ms, label);

	printf("%*s", n < COL ? COL - n : 1, "");
}

/* A step line with a free text. */
static void step_note(double ms, const char *label, const char *fmt, ...)
{
	va_list ap;

	step_head(ms, label);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A continuation line under the reply column. */
static void step_more(const char *fmt, ...)
{
	va_list ap;

	printf("%*s", COL, "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A step line with the reply: its first line, then the others indented under it. */
static void step_reply(double ms, const char *label, const struct riptidectl_reply *rep)
{
	const char *p = rep->raw, *end = rep->raw + rep->len;

	step_head(ms, label);
	for (bool first = true; p < end; first = false) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (!first)
			printf("%*s", COL, "");
		put_text(p, n && p[n - 1] == '\r' ? n - 1 : n);
		putchar('\n');
		p += n + 1;
	}
}

/* ---- outcomes ---- */

/* Record the failure of step `label` (why: printf-style). Returns -1. */
static int sess_fail(struct rsess *s, const char *label, const char *fmt, ...)
{
	va_list ap;

	snprintf(s->r->step, sizeof(s->r->step), "%s", label);
	va_start(ap, fmt);
	vsnprintf(s->r->why, sizeof(s->r->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* A reply that refuses step `label`: recorded with its last line. Returns -1. */
static int sess_refused(struct rsess *s, const char *label)
{
	const struct smtp_reply *r = &s->rep.r;
	char text[512];
	size_t n = r->text_len < sizeof(text) - 1 ? r->text_len : sizeof(text) - 1;

	for (size_t i = 0; i < n; i++)
		text[i] = (unsigned char)r->text[i] < 0x20 ? '?' : r->text[i];
	text[n] = 0;
	if (r->enh_class)
		return sess_fail(s, label, "%d %d.%d.%d %s", r->code, r->enh_class, r->enh_subject,
				 r->enh_detail, text);
	return sess_fail(s, label, "%d %s", r->code, text);
}

/* The connection failed during `label` (t0: when the step began): printed, recorded, no QUIT
 * will be sent. Returns -1. */
static int sess_broken(struct rsess *s, const char *label, double t0)
{
	const char *why = riptidectl_conn_error(s->c);

	step_note(riptidectl_now_ms() - t0, label, "error: %s", why);
	s->usable = false;
	return sess_fail(s, label, "%s", why);
}

/* ---- commands ---- */

/* Send `line` + CRLF (label is printed instead of it), read and print the reply. Returns the
 * reply code, or -1 when the connection failed (printed; recorded as label's failure when
 * record). The line buffer is wiped: it may hold credentials. */
static int sess_cmd(struct rsess *s, const char *label, const char *line, unsigned tmo, bool record)
{
	double t0 = riptidectl_now_ms();
	char buf[1200];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", line), ret;

	BUG_ON(n < 0 || (size_t)n >= sizeof(buf));
	ret = riptidectl_conn_send(s->c, buf, (size_t)n, tmo);
	explicit_bzero(buf, sizeof(buf));
	if (ret == 0)
		ret = riptidectl_conn_reply(s->c, tmo, &s->rep);
	if (ret < 0) {
		if (record)
			return sess_broken(s, label, t0);
		step_note(riptidectl_now_ms() - t0, label, "error: %s",
			  riptidectl_conn_error(s->c));
		s->usable = false;
		return -1;
	}
	step_reply(riptidectl_now_ms() - t0, label, &s->rep);
	return s->rep.r.code;
}

static unsigned tmo(uint64_t ms)
{
	return ms > 3600000u ? 3600000u : (unsigned)ms;
}

/* ---- EHLO ---- */

/* Which AUTH mechanisms the EHLO answer in s->rep offers ("250-AUTH PLAIN LOGIN", also the
 * old "AUTH=" form). */
static void sess_auth_mechs(struct rsess *s)
{
	const char *p = s->rep.raw, *end = p + s->rep.len;

	s->plain = s->login = false;
	s->mechs[0] = 0;
	for (const char *nl; p < end; p = nl + 1) {
		size_t n;

		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl ? nl : end;
		n = (size_t)(nl - p);
		if (n < 9 || strncasecmp(p + 4, "AUTH", 4) != 0 || (p[8] != ' ' && p[8] != '='))
			continue;
		snprintf(s->mechs, sizeof(s->mechs), "%.*s", (int)(n - 9), p + 9);
		s->mechs[strcspn(s->mechs, "\r")] = 0;
		for (char *w = s->mechs, *e; *w; w = *e ? e + 1 : e) {
			e = w + strcspn(w, " ");
			s->plain |= e - w == 5 && strncasecmp(w, "PLAIN", 5) == 0;
			s->login |= e - w == 5 && strncasecmp(w, "LOGIN", 5) == 0;
		}
	}
}

/* EHLO (HELO after a 5xx, as the daemon does). Returns 0 or -1. */
static int sess_hello(struct rsess *s)
{
	const struct config *c = s->r->cfg;
	const char *name = c->helo_name[0] ? c->helo_name : c->hostname;
	struct smtp_ehlo e = {0};
	char line[300];
	int code;

	snprintf(line, sizeof(line), "EHLO %s", name);
	code = sess_cmd(s, line, line, tmo(c->helo_timeout_ms), true);
	if (code >= 200 && code < 300) {
		smtp_ehlo_parse(&s->rep.r, &e);
		s->ext = e.ext;
		sess_auth_mechs(s);
		return 0;
	}
	if (code < 500)
		return code < 0 ? -1 : sess_refused(s, line);
	snprintf(line, sizeof(line), "HELO %s", name);
	code = sess_cmd(s, line, line, tmo(c->helo_timeout_ms), true);
	s->ext = 0;
	s->plain = s->login = false;
	if (code >= 200 && code < 300)
		return 0;
	return code < 0 ? -1 : sess_refused(s, line);
}

/* ---- TLS ---- */

static void sess_print_tls(struct rsess *s, double ms)
{
	enum config_tls_verify v = config_tls_verify_effective(s->r->cfg);
	struct tls_info i;

	riptidectl_conn_tls_info(s->c, &i);
	step_note(ms, "TLS handshake", "%s, %s%s", i.version, i.cipher,
		  i.resumed ? " (resumed)" : "");
	step_more("subject:  %s", i.subject[0] ? i.subject : "(no certificate)");
	step_more("issuer:   %s", i.issuer);
	step_more("validity: %s to %s", i.not_before, i.not_after);
	if (i.verified)
		step_more("verification: verified (name %s, tls_verify = %s)", s->t->host,
			  v == CONFIG_VERIFY_CA ? "ca" : "none");
	else
		step_more("verification: NOT verified: %s (accepted: tls_verify = none)",
			  i.verify_error);
	s->r->tls_on = true;
	s->r->verified = i.verified;
}

/* The handshake, on a fresh connection (smtps) or after STARTTLS's 220. Returns 0 or -1. */
static int sess_handshake(struct rsess *s)
{
	double t0 = riptidectl_now_ms();

	if (riptidectl_conn_starttls(s->c, s->r->tls, s->t->host, tmo(s->r->cfg->helo_timeout_ms)) <
	    0) {
		s->r->tls_failed = true;
		step_note(riptidectl_now_ms() - t0, "TLS handshake", "FAILED: %s",
			  riptidectl_conn_error(s->c));
		s->usable = false;
		return sess_fail(s, "TLS handshake", "%s", riptidectl_conn_error(s->c));
	}
	s->tls_on = true;
	sess_print_tls(s, riptidectl_now_ms() - t0);
	return 0;
}

/* STARTTLS absent or refused: plaintext with opportunistic, a failure with required. */
static int sess_no_starttls(struct rsess *s, const char *why)
{
	bool required = s->r->cfg->tls == CONFIG_TLS_REQUIRED;

	step_note(-1, "STARTTLS", "%s: %s", why,
		  required ? "FAILED (tls = required)" : "plaintext (tls = opportunistic)");
	if (!required)
		return 0;
	s->r->tls_failed = true;
	return sess_fail(s, "STARTTLS", "%s (tls = required)", why);
}

/* STARTTLS as [delivery] tls says, then EHLO again. Returns 0 or -1. */
static int sess_starttls(struct rsess *s)
{
	const struct config *c = s->r->cfg;
	int code;

	if (s->tls_on || !s->use_tls || c->tls == CONFIG_TLS_NONE) {
		if (!s->tls_on && (s->ext & SMTP_EXT_STARTTLS))
			step_note(-1, "STARTTLS", "offered, not used (%s)",
				  c->tls == CONFIG_TLS_NONE
				      ? "tls = none"
				      : "plaintext retry after a failed handshake");
		return 0;
	}
	if (!(s->ext & SMTP_EXT_STARTTLS))
		return sess_no_starttls(s, "not offered by the server");
	code = sess_cmd(s, "STARTTLS", "STARTTLS", tmo(c->helo_timeout_ms), true);
	if (code < 0)
		return -1;
	if (code != 220 && c->tls != CONFIG_TLS_REQUIRED)
		return sess_no_starttls(s, "refused");
	if (code != 220) {
		s->r->tls_failed = true;
		return sess_refused(s, "STARTTLS");
	}
	if (riptidectl_conn_pending(s->c)) {
		s->r->tls_failed = true;
		s->usable = false;
		step_note(-1, "STARTTLS", "FAILED: plaintext after the 220 (response injection)");
		return sess_fail(s, "STARTTLS",
				 "STARTTLS response injection: plaintext after the 220");
	}
	if (sess_handshake(s) < 0)
		return -1;
	return sess_hello(s);
}

/* ---- AUTH ---- */

/* Encode n bytes of secret as base64 into out and wipe nothing else. Returns 0 or -1. */
static int b64(const char *p, size_t n, char *out, size_t cap)
{
	return smtp_b64_encode(p, n, out, cap) < 0 ? -1 : 0;
}

/* The end of AUTH: 235 or a failure that names 535 as a configuration error. */
static int sess_auth_end(struct rsess *s, const char *label, int code)
{
	if (code == 235) {
		s->r->authed = true;
		return 0;
	}
	if (code < 0)
		return -1;
	sess_refused(s, label);
	if (code == 535)
		snprintf(s->r->why + strlen(s->r->why), sizeof(s->r->why) - strlen(s->r->why),
			 " (check auth_user/auth_password: the daemon defers such mail)");
	return -1;
}

/* AUTH PLAIN with an initial response (RFC 4616): authzid empty, user, password. */
static int sess_auth_plain(struct rsess *s)
{
	const struct config *c = s->r->cfg;
	char raw[2 * CONFIG_STR + 2], enc[sizeof(raw) * 4 / 3 + 8], line[sizeof(enc) + 16];
	size_t ul = strlen(c->auth_user), pl = strlen(c->auth_password);
	int code = -1;

	raw[0] = 0;
	memcpy(raw + 1, c->auth_user, ul + 1);
	memcpy(raw + 2 + ul, c->auth_password, pl);
	if (b64(raw, 2 + ul + pl, enc, sizeof(enc)) == 0) {
		snprintf(line, sizeof(line), "AUTH PLAIN %s", enc);
		code = sess_cmd(s, "AUTH PLAIN ****", line, tmo(c->helo_timeout_ms), true);
	}
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(enc, sizeof(enc));
	explicit_bzero(line, sizeof(line));
	return sess_auth_end(s, "AUTH PLAIN ****", code);
}

/* One answer of AUTH LOGIN: `secret` base64-encoded, printed as label. Returns the code. */
static int sess_login_step(struct rsess *s, const char *label, const char *secret)
{
	char enc[CONFIG_STR * 4 / 3 + 8];
	int code = -1;

	if (b64(secret, strlen(secret), enc, sizeof(enc)) == 0)
		code = sess_cmd(s, label, enc, tmo(s->r->cfg->helo_timeout_ms), true);
	explicit_bzero(enc, sizeof(enc));
	return code;
}

/* AUTH LOGIN: user name and password each after a 334. */
static int sess_auth_login(struct rsess *s)
{
	const struct config *c = s->r->cfg;
	int code = sess_cmd(s, "AUTH LOGIN", "AUTH LOGIN", tmo(c->helo_timeout_ms), true);

	if (code == 334)
		code = sess_login_step(s, "  user name ****", c->auth_user);
	if (code == 334)
		code = sess_login_step(s, "  password ****", c->auth_password);
	return sess_auth_end(s, "AUTH LOGIN", code);
}

/* AUTH when auth_user is set: never in plaintext unless auth_plaintext = yes. */
static int sess_auth(struct rsess *s)
{
	const struct config *c = s->r->cfg;

	if (!c->auth_user[0])
		return 0;
	s->r->before_mail = false; /* the same credentials would fail on every host */
	if (!s->tls_on && !c->auth_plaintext) {
		step_note(-1, "AUTH",
			  "not sent: the connection is not encrypted (auth_plaintext = no)");
		return sess_fail(s, "AUTH",
				 "credentials not sent without TLS (auth_plaintext = no)");
	}
	if (s->plain)
		return sess_auth_plain(s);
	if (s->login)
		return sess_auth_login(s);
	step_note(-1, "AUTH", "FAILED: the server offers %s%s", s->mechs[0] ? "only " : "no AUTH",
		  s->mechs);
	return sess_fail(s, "AUTH", "the server offers %s%s (riptide speaks PLAIN and LOGIN)",
			 s->mechs[0] ? "only " : "no AUTH", s->mechs);
}

/* ---- the transaction ---- */

/* MAIL FROM:<>, RCPT TO:<rcpt>, RSET. Returns 0 when the recipient was accepted. */
static int sess_txn(struct rsess *s)
{
	const struct config *c = s->r->cfg;
	char line[700];
	int code, ok;

	s->r->before_mail = false;
	code = sess_cmd(s, "MAIL FROM:<>", "MAIL FROM:<>", tmo(c->mail_timeout_ms), true);
	if (code < 0)
		return -1;
	if (code / 100 != 2)
		return sess_refused(s, "MAIL FROM:<>");
	snprintf(line, sizeof(line), "RCPT TO:<%s>", s->r->rcpt);
	code = sess_cmd(s, line, line, tmo(c->rcpt_timeout_ms), true);
	if (code < 0)
		return -1;
	ok = code / 100 == 2 ? 0 : sess_refused(s, line);
	sess_cmd(s, "RSET", "RSET", tmo(c->mail_timeout_ms), false);
	return ok;
}

/* Connect (and for smtps the handshake) and read the greeting. Returns 0 or -1. */
static int sess_open(struct rsess *s)
{
	const struct config *c = s->r->cfg;
	const struct util_addr *src = s->t->addr.family == AF_INET6 ? &c->source_v6 : &c->source_v4;
	double t0 = riptidectl_now_ms();
	char err[300], from[64] = "";

	if (src->family == AF_INET || src->family == AF_INET6) {
		util_addr_format(src, from, sizeof(from));
		from[strlen(from) - 2] = 0; /* its port is 0: ":0" */
	}
	if (riptidectl_conn_open(&s->t->addr, src, tmo(c->connect_timeout_ms), &s->c, err,
				 sizeof(err)) < 0) {
		step_note(riptidectl_now_ms() - t0, "connect", "FAILED: %s", err);
		return sess_fail(s, "connect", "%s", err);
	}
	step_note(riptidectl_now_ms() - t0, "connect", "connected to %s%s%s", s->t->ip,
		  from[0] ? " from " : "", from);
	s->usable = true;
	if (s->use_tls && c->tls == CONFIG_TLS_SMTPS && sess_handshake(s) < 0)
		return -1;
	t0 = riptidectl_now_ms();
	if (riptidectl_conn_reply(s->c, tmo(c->greeting_timeout_ms), &s->rep) < 0)
		return sess_broken(s, "greeting", t0);
	step_reply(riptidectl_now_ms() - t0, "greeting", &s->rep);
	return s->rep.r.code / 100 == 2 ? 0 : sess_refused(s, "greeting");
}

int riptidectl_route_attempt(struct riptidectl_route_run *r, const struct riptidectl_target *t,
			     bool use_tls)
{
	static struct rsess s; /* 16 KiB of reply buffer: not on the stack */
	int ret;

	memset(&s, 0, sizeof(s));
	s.r = r;
	s.t = t;
	s.use_tls = use_tls && r->tls;
	r->before_mail = true;
	r->tls_failed = r->tls_on = r->verified = r->authed = false;
	r->step[0] = r->why[0] = 0;
	ret = sess_open(&s);
	if (ret == 0)
		ret = sess_hello(&s);
	if (ret == 0)
		ret = sess_starttls(&s);
	if (ret == 0)
		ret = sess_auth(&s);
	if (ret == 0)
		ret = sess_txn(&s);
	if (s.c && s.usable)
		sess_cmd(&s, "QUIT", "QUIT", tmo(r->cfg->helo_timeout_ms), false);
	riptidectl_conn_close(s.c);
	explicit_bzero(&s.rep, sizeof(s.rep));
	return ret;
}
