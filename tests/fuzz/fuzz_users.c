/* fuzz_users — libFuzzer harness for the injection AUTH users file parser (engine/daemon/auth.c,
 * auth_load): arbitrary bytes as the file.
 *
 * Why: the file is operator input read once at start-up, and a malformed one must stop the
 * daemon with a clear "path:line: what" (exit 2), never crash it or load half a user. Each input
 * is written to a memfd and loaded through /proc/self/fd/N. Invariants: the result is 0 (and
 * then the users counted are at most the input's lines) or -EINVAL with err starting with
 * "PATH:LINE: " and LINE between 1 and the input's line count + 1. No password is checked
 * (crypt with a hostile cost parameter would only measure crypt).
 */
#include "engine/daemon/auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Lines in the input: LF count, plus one for a last line without LF. */
static unsigned fuzz_users_lines(const uint8_t *d, size_t n)
{
	unsigned k = 0;

	for (size_t i = 0; i < n; i++)
		k += d[i] == '\n';
	return k + (n && d[n - 1] != '\n');
}

/* err must be "path:LINE: ..." with a plausible LINE. */
static void fuzz_users_check_err(const char *path, const char *err, unsigned lines)
{
	size_t pl = strlen(path);
	unsigned long line;
	char *end;

	if (strncmp(err, path, pl) != 0 || err[pl] != ':')
		abort();
	line = strtoul(err + pl + 1, &end, 10);
	if (end == err + pl + 1 || *end != ':' || line < 1 || line > lines + 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[512] = "";
	struct auth *a = NULL;
	int fd = memfd_create("users", MFD_CLOEXEC), ret;

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = auth_load(path, &a, err, sizeof(err));
	if (ret == 0) {
		if (!a || auth_users(a) > fuzz_users_lines(data, size))
			abort();
		auth_free(a);
	} else if (ret == -EINVAL) {
		fuzz_users_check_err(path, err, fuzz_users_lines(data, size));
	} else {
		abort(); /* the memfd is always readable */
	}
	close(fd);
	return 0;
}
