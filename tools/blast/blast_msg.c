/* blast_msg — the messages riptide-blast sends: headers, filler, recipients, --body files.
 *
 * Why: every message must be unique (Message-ID carries the run id and sequence number) and
 * exercise dot-stuffing (some filler lines start with '.', one is a lone '.'), yet cost almost
 * nothing to produce: each session reuses one buffer; the filler is a memcpy of a fixed line.
 */
#include "tools/blast/blast.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLAST_LINE 76

static const char blast_line[BLAST_LINE + 1] =
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 riptide-bla";

/* blast_msg_id: see blast.h. */
size_t blast_msg_id(const struct blast_cfg *cfg, uint64_t seq, char *out, size_t cap)
{
	int n = snprintf(out, cap, "<blast.%s.%llu@riptide-blast>", cfg->runid,
			 (unsigned long long)seq);

	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* blast_rcpt: see blast.h. */
void blast_rcpt(const struct blast_cfg *cfg, uint64_t seq, unsigned j, char *out, size_t cap)
{
	uint64_t k = (seq - 1) * cfg->rcpt_per_msg + j; /* seq starts at 1 */

	snprintf(out, cap, "user%llu@%s", (unsigned long long)k, cfg->domains[k % cfg->ndomains]);
}

/* One filler line of `len` bytes + CRLF; every 10th line starts with '.', line 5 is a lone
 * '.' (the case that would end DATA if it were not stuffed). */
static size_t blast_filler_line(char *out, unsigned line, size_t len)
{
	memcpy(out, blast_line, len);
	if (line == 5 && len >= 1) {
		out[0] = '.';
		len = 1;
	} else if (line % 10 == 9 && len >= 1) {
		out[0] = '.';
	}
	out[len] = '\r';
	out[len + 1] = '\n';
	return len + 2;
}

/* Exactly n bytes of CRLF-terminated lines (n == 1 writes nothing and returns 0). */
static size_t blast_filler(char *out, size_t n)
{
	size_t off = 0, left, len;
	unsigned line = 0;

	while ((left = n - off) >= 2) {
		if (left >= BLAST_LINE + 2 && left != BLAST_LINE + 3)
			len = BLAST_LINE;
		else if (left == BLAST_LINE + 3)
			len = BLAST_LINE - 1; /* never leave a single byte */
		else
			len = left - 2;
		off += blast_filler_line(out + off, line++, len);
	}
	return off;
}

static size_t blast_headers(const struct blast_cfg *cfg, uint64_t seq, const char *to, char *out,
			    size_t cap)
{
	char id[96], date[64];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	blast_msg_id(cfg, seq, id, sizeof(id));
	n = snprintf(out, cap,
		     "From: <%s>\r\nTo: <%s>\r\nSubject: riptide-blast %s message %llu\r\n"
		     "Date: %s\r\nMessage-ID: %s\r\n\r\n",
		     cfg->sender, to, cfg->runid, (unsigned long long)seq, date, id);
	BUG_ON(n < 0 || (size_t)n >= cap);
	return (size_t)n;
}

/* blast_msg_build: see blast.h. */
size_t blast_msg_build(const struct blast_cfg *cfg, uint64_t seq, const char *const *rcpts,
		       char **buf, size_t *cap)
{
	size_t need = cfg->size + 2 * BLAST_ADDR_MAX + 512, h;

	if (*cap < need) {
		*buf = util_xrealloc(*buf, need);
		*cap = need;
	}
	h = blast_headers(cfg, seq, rcpts[0], *buf, *cap);
	if (cfg->size > h)
		h += blast_filler(*buf + h, cfg->size - h);
	else
		h += blast_filler(*buf + h, 2 + BLAST_LINE); /* too small: one short line */
	return h;
}

/* CRLF-normalise in[0..n) into out (which holds 2n bytes): bare LF and bare CR become CRLF. */
static size_t blast_crlf(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			i++;
		} else if (in[i] == '\r' || in[i] == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
		} else {
			out[o++] = in[i];
		}
	}
	return o;
}

/* blast_load_body: see blast.h. */
int blast_load_body(struct blast_cfg *cfg, const char *path)
{
	struct stat st;
	char *raw = NULL;
	size_t got = 0;
	ssize_t r;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	raw = util_xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size && (r = read(fd, raw + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)r;
	cfg->body = util_xmalloc(2 * got + 2);
	cfg->body_len = blast_crlf(raw, got, cfg->body);
out:
	free(raw);
	close(fd);
	return ret;
}
