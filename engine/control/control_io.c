/* control_io.c — socket I/O of the control protocol, for the server and the client: every
 * wait is bounded and can be cut short by the server's stop descriptor.
 *
 * Why: the control thread must never hang on a client that connects and says nothing, or
 * stops reading half way through a listing, and ctl_stop must not wait for either; riptidectl
 * must not hang on a daemon that stopped answering. Non-blocking sockets and poll() with a
 * timeout give both, with one helper per direction.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "engine/control/control_types.h"
#include "engine/util/util.h"

/* ctl_io_wait: see control_types.h. */
int ctl_io_wait(int fd, short events, int stopfd, unsigned timeout_ms)
{
	struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = stopfd, .events = POLLIN}};
	uint64_t end = util_mono_ms() + timeout_ms;

	for (;;) {
		uint64_t now = util_mono_ms();
		int n;

		if (now >= end)
			return -ETIMEDOUT;
		n = poll(p, stopfd >= 0 ? 2 : 1, (int)(end - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		if (stopfd >= 0 && p[1].revents)
			return -ECANCELED;
		return 0;
	}
}

/* ctl_io_write: see control_types.h. */
int ctl_io_write(int fd, const void *p, size_t n, int stopfd, unsigned timeout_ms)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		int rc;

		if (w > 0) {
			c += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if ((rc = ctl_io_wait(fd, POLLOUT, stopfd, timeout_ms)) < 0)
			return rc;
	}
	return 0;
}

/* ctl_io_read: see control_types.h. */
ssize_t ctl_io_read(int fd, void *p, size_t n, int stopfd, unsigned timeout_ms)
{
	for (;;) {
		ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
		int rc;

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if ((rc = ctl_io_wait(fd, POLLIN, stopfd, timeout_ms)) < 0)
			return rc;
	}
}

/* ctl_io_connect: see control_types.h. A UNIX connect only waits while the listener's backlog
 * is full; it is made blocking with SO_SNDTIMEO as its bound (that is the timeout a UNIX
 * connect honours), then the socket is switched to non-blocking. */
int ctl_io_connect(const char *path, unsigned timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000};
	int fd, rc = 0;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		rc = errno == EAGAIN || errno == EINPROGRESS ? -ETIMEDOUT : -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* ctl_socket_path: see control.h. */
int ctl_socket_path(const char *control_socket, const char *spool, char *out, size_t len)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n;

	if (strncmp(control_socket, "unix:", 5) == 0)
		control_socket += 5;
	if (*control_socket)
		n = snprintf(out, len, "%s", control_socket);
	else
		n = snprintf(out, len, "%s%scontrol.sock", spool,
			     *spool && spool[strlen(spool) - 1] == '/' ? "" : "/");
	if (n < 0 || (size_t)n >= len || (size_t)n >= max)
		return -ENAMETOOLONG;
	return 0;
}
