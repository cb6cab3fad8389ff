/* control_server.c — the control socket and its thread: listen, accept one client at a time,
 * read its request line, run the command, write the answer.
 *
 * Why: the socket is an administrator's door into the running daemon, so its file is created
 * mode 0600 from the start (fchmod on the socket before bind: the kernel gives the new file
 * the socket inode's mode, so there is no moment it is wider, and the process umask, which
 * other threads share, is never touched), only a same-uid or root peer is served, and a path
 * that is already taken by a live server or by something that is not a socket is refused
 * rather than unlinked. One client at a time keeps the thread simple; every wait is bounded
 * (request 5 s, output 30 s per write) and ctl_stop interrupts any of them at once.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "engine/control/control_types.h"
#include "engine/util/util.h"

struct ctl_server {
	pthread_t thr;
	int lfd, evfd;
	atomic_bool stop;
	struct ctl_engine eng;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* the socket file we made: unlinked at stop only if it is still ours */
	ino_t ino;
};

static const struct {
	const char *name;
	ctl_cmd_fn fn;
} ctl_cmds[] = {
    {"summary", ctl_cmd_summary}, {"list", ctl_cmd_list},     {"show", ctl_cmd_show},
    {"delete", ctl_cmd_delete},	  {"bounce", ctl_cmd_bounce}, {"retry", ctl_cmd_retry},
    {"suspend", ctl_cmd_suspend}, {"resume", ctl_cmd_resume}, {"clear", ctl_cmd_clear},
    {"reload", ctl_cmd_reload},
};

/* ---- serving one client ---- */

/* Read the request line (without LF) into buf within CTL_READ_TIMEOUT_MS in all. Returns 0,
 * -EINVAL (too long, or the client closed first; reason in why) or an I/O error. */
static int ctl_read_req(struct ctl_server *s, int fd, char *buf, size_t cap, char *why, size_t wl)
{
	uint64_t end = util_mono_ms() + CTL_READ_TIMEOUT_MS;
	size_t len = 0;

	for (;;) {
		uint64_t now = util_mono_ms();
		char *lf;
		ssize_t n;

		if (now >= end)
			return -ETIMEDOUT;
		n = ctl_io_read(fd, buf + len, cap - 1 - len, s->evfd, (unsigned)(end - now));
		if (n <= 0) {
			snprintf(why, wl, "no complete request line");
			return n < 0 ? (int)n : -EINVAL;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if ((lf = memchr(buf, '\n', len))) {
			*lf = '\0';
			if (lf > buf && lf[-1] == '\r')
				lf[-1] = '\0';
			return 0;
		}
		if (len == cap - 1) {
			snprintf(why, wl, "request longer than %d bytes", CTL_REQ_MAX);
			return -EINVAL;
		}
	}
}

/* The peer is our own uid or root. */
static bool ctl_peer_ok(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	return cr.uid == geteuid() || cr.uid == 0;
}

/* Run the request's command. Returns its result. */
static int ctl_dispatch(struct ctl_server *s, const struct ctl_req *r, struct ctl_out *o)
{
	for (size_t i = 0; i < ARRAY_SIZE(ctl_cmds); i++)
		if (strcmp(r->cmd, ctl_cmds[i].name) == 0)
			return ctl_cmds[i].fn(&s->eng, r, o);
	ctl_out_msg(o, "unknown command");
	return -EINVAL;
}

/* Serve the client on fd: one request, one answer. The answer may be cut short by a write
 * error or the server stopping; the client then sees no status line. */
static void ctl_serve(struct ctl_server *s, int fd)
{
	char line[CTL_REQ_MAX + 1];
	struct ctl_req req;
	struct ctl_out o;
	int rc;

	ctl_out_init(&o, fd, s->evfd, &s->stop, false);
	if (!ctl_peer_ok(fd)) {
		ctl_out_msg(&o, "not the daemon's user");
		rc = -EACCES;
	} else if ((rc = ctl_read_req(s, fd, line, sizeof(line), o.msg, sizeof(o.msg))) < 0) {
		if (rc != -EINVAL)
			goto out; /* timeout, reset, stop: nobody to answer */
	} else if ((rc = ctl_req_parse(line, &req, o.msg, sizeof(o.msg))) == 0) {
		o.json = req.json;
		o.msg[0] = '\0';
		rc = ctl_dispatch(s, &req, &o);
	}
	if (!o.err) {
		o.len = rc < 0 ? 0 : o.len; /* a failed command's partial data is not sent */
		ctl_out_status(&o, rc);
	}
out:
	ctl_out_free(&o);
}

/* ---- the thread ---- */

static void *ctl_thread(void *arg)
{
	struct ctl_server *s = arg;
	struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->evfd, .events = POLLIN}};

	while (!atomic_load(&s->stop)) {
		int fd;

		if (poll(p, 2, -1) < 0 || p[1].revents)
			continue; /* EINTR, or stopping: the loop condition decides */
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
				poll(&p[1], 1, 100); /* out of descriptors: do not spin */
			continue;
		}
		ctl_serve(s, fd);
		close(fd);
	}
	return NULL;
}

/* ---- the socket file ---- */

/* Make path free for bind: nothing there, or a stale socket nobody listens on (unlinked).
 * Returns 0, -EADDRINUSE (a server answers there), -EEXIST (not a socket) or -errno. */
static int ctl_take_path(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "control socket %s: exists and is not a socket", path);
		return -EEXIST;
	}
	fd = ctl_io_connect(path, 1000);
	if (fd != -ECONNREFUSED) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "control socket %s: %s", path,
			 fd >= 0 ? "another process serves it" : strerror(-fd));
		return fd >= 0 ? -EADDRINUSE : fd;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "control socket %s: cannot remove the stale socket: %s", path,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

/* Say why bind(path) failed with e (positive). Returns -e. */
static int ctl_bind_error(const char *path, int e, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path) : 1;

	if (e == ENOENT || e == ENOTDIR)
		snprintf(err, errlen, "control socket %s: directory %.*s does not exist", path,
			 dirlen, slash ? path : ".");
	else
		snprintf(err, errlen, "control socket %s: bind: %s", path, strerror(e));
	return -e;
}

/* Create the listening socket at path, mode 0600, into s. Returns 0 or -errno (message in
 * err). */
static int ctl_listen(struct ctl_server *s, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path too long (%zu bytes, at most %zu): %s",
			 strlen(path), sizeof(sa.sun_path) - 1, path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->lfd < 0 || fchmod(s->lfd, 0600) < 0) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return -errno;
	}
	if ((rc = ctl_take_path(path, err, errlen)) < 0)
		return rc;
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return ctl_bind_error(path, errno, err, errlen);
	/* umask may have made it narrower than 0600 (then the owner could not connect). */
	if (chmod(path, 0600) < 0 || stat(path, &st) < 0 || listen(s->lfd, 16) < 0) {
		rc = -errno;
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		unlink(path);
		return rc;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
}

/* Start the thread with every signal blocked (the daemon's signals go to its main thread). */
static int ctl_spawn(struct ctl_server *s)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->thr, NULL, ctl_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}

/* Unlink the socket file if it is still the one we bound. */
static void ctl_unlink(struct ctl_server *s)
{
	struct stat st;

	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
}

/* ctl_start: see control.h. */
int ctl_start(const char *path, const struct ctl_engine *eng, struct ctl_server **out, char *err,
	      size_t errlen)
{
	struct ctl_server *s = util_xcalloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	s->eng = *eng;
	s->lfd = s->evfd = -1;
	atomic_init(&s->stop, false);
	if ((rc = ctl_listen(s, path, err, errlen)) < 0)
		goto fail;
	memcpy(s->path, path, strlen(path) + 1);
	s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rc = s->evfd < 0 ? -errno : ctl_spawn(s);
	if (rc < 0) {
		snprintf(err, errlen, "control thread: %s", strerror(-rc));
		ctl_unlink(s);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->evfd >= 0)
		close(s->evfd);
	free(s);
	return rc;
}

/* ctl_stop: see control.h. */
void ctl_stop(struct ctl_server *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	atomic_store(&s->stop, true);
	if (write(s->evfd, &one, sizeof(one)) < 0) {
		/* an eventfd write only fails at its counter's limit: already woken */
	}
	pthread_join(s->thr, NULL);
	ctl_unlink(s);
	close(s->lfd);
	close(s->evfd);
	free(s);
}
