/* control_client.c — the client end of the control protocol (ctl_call), for riptidectl.
 *
 * Why: the answer to `list` can be a million lines; the client copies each data line to its
 * output as it arrives through one fixed buffer (a small state machine over the framing), so
 * its memory does not depend on the size of the answer. It never interprets the data: the
 * server has formatted it (text or JSON), and the framing guarantees a data line cannot end
 * the answer early.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "engine/control/control_types.h"

/* Where the reader is in the answer. */
enum rd_state {
	RD_START,  /* at the start of a line */
	RD_D,	   /* after "D" */
	RD_DATA,   /* inside a data line: copied to out */
	RD_STATUS, /* inside the status line */
	RD_DONE,   /* the status line is complete */
};

struct rd {
	enum rd_state st;
	FILE *out;
	char status[CTL_MSG_MAX + 64];
	size_t slen;
};

/* Feed n bytes of the answer. Returns 0, or -EPROTO when they do not follow the framing. */
static int rd_feed(struct rd *r, const char *p, size_t n)
{
	while (n > 0 && r->st != RD_DONE) {
		const char *lf;
		size_t k;

		switch (r->st) {
		case RD_START:
			r->st = *p == 'D' ? RD_D : RD_STATUS;
			if (r->st == RD_D)
				p++, n--;
			break;
		case RD_D:
			if (*p != ' ')
				return -EPROTO;
			r->st = RD_DATA;
			p++, n--;
			break;
		case RD_DATA:
			lf = memchr(p, '\n', n);
			k = lf ? (size_t)(lf - p) + 1 : n;
			fwrite(p, 1, k, r->out);
			r->st = lf ? RD_START : RD_DATA;
			p += k, n -= k;
			break;
		case RD_STATUS:
			lf = memchr(p, '\n', n);
			k = lf ? (size_t)(lf - p) : n;
			if (k > sizeof(r->status) - 1 - r->slen)
				k = sizeof(r->status) - 1 - r->slen; /* the rest is dropped */
			memcpy(r->status + r->slen, p, k);
			r->slen += k;
			r->st = lf ? RD_DONE : RD_STATUS;
			n = 0; /* all taken (or the status line is complete) */
			break;
		case RD_DONE:
			break;
		}
	}
	return 0;
}

/* Turn the status line into ctl_call's result: 0 (OK), a positive errno (ERR), or -EPROTO. */
static int rd_result(struct rd *r, char *msg, size_t msglen)
{
	char *s = r->status, *name, *text;
	int e;

	s[r->slen] = '\0';
	if (strcmp(s, "OK") == 0 || strncmp(s, "OK ", 3) == 0) {
		snprintf(msg, msglen, "%s", s[2] ? s + 3 : "");
		return 0;
	}
	if (strncmp(s, "ERR ", 4) != 0) {
		snprintf(msg, msglen, "the answer does not follow the control protocol");
		return -EPROTO;
	}
	name = s + 4;
	text = strchr(name, ' ');
	if (text)
		*text++ = '\0';
	e = ctl_errnum(name);
	snprintf(msg, msglen, "%s", text && *text ? text : name);
	return e ? e : EIO;
}

/* Say why connecting to path failed with rc. Returns rc. */
static int call_connect_error(const char *path, int rc, char *msg, size_t msglen)
{
	if (rc == -ENOENT || rc == -ECONNREFUSED)
		snprintf(msg, msglen, "cannot connect to %s: %s (is riptide running?)", path,
			 strerror(-rc));
	else
		snprintf(msg, msglen, "cannot connect to %s: %s", path, strerror(-rc));
	return rc;
}

/* Read the answer on fd into r until its status line. Returns 0 or -errno (message in msg). */
static int call_read(int fd, struct rd *r, unsigned timeout_ms, char *msg, size_t msglen)
{
	char buf[16384];

	while (r->st != RD_DONE) {
		ssize_t n = ctl_io_read(fd, buf, sizeof(buf), -1, timeout_ms);

		if (n == 0)
			n = -EPIPE;
		if (n > 0 && rd_feed(r, buf, (size_t)n) < 0)
			n = -EPROTO;
		if (n < 0) {
			snprintf(msg, msglen, "%s",
				 n == -ETIMEDOUT ? "riptide did not answer in time"
				 : n == -EPROTO	 ? "the answer does not follow the control protocol"
						 : "the connection closed before the answer ended");
			return (int)n;
		}
	}
	return 0;
}

/* ctl_call: see control.h. */
int ctl_call(const char *path, const char *command, const struct ctl_arg *args, size_t nargs,
	     unsigned timeout_ms, FILE *out, char *msg, size_t msglen)
{
	char req[CTL_REQ_MAX + 1];
	struct rd r = {.st = RD_START, .out = out};
	int len = ctl_req_format(req, sizeof(req), command, args, nargs), fd, rc;

	msg[0] = '\0';
	if (len < 0) {
		snprintf(msg, msglen, "request too long or malformed");
		return len;
	}
	fd = ctl_io_connect(path, timeout_ms);
	if (fd < 0)
		return call_connect_error(path, fd, msg, msglen);
	rc = ctl_io_write(fd, req, (size_t)len, -1, timeout_ms);
	if (rc < 0)
		snprintf(msg, msglen, "cannot send the request to %s: %s", path, strerror(-rc));
	else
		shutdown(fd, SHUT_WR);
	if (rc == 0)
		rc = call_read(fd, &r, timeout_ms, msg, msglen);
	if (rc == 0)
		rc = rd_result(&r, msg, msglen);
	close(fd);
	fflush(out);
	return rc;
}
