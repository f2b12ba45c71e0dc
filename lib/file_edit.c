#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "wgrp/file_edit.h"

/* Opens and locks path; tries again when the file was replaced between the
 * open and the lock (another editor renamed its version over it), so that
 * the file locked is the one the path names. */
static int open_locked(struct file_edit *f, struct errbuf *e)
{
	struct stat now;

	for (int tries = 0; tries < 3; tries++) {
		f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (f->fd < 0)
			return errbuf_set(e, -errno, "%s: cannot open: %s", f->path, strerror(errno));
		if (flock(f->fd, LOCK_EX | LOCK_NB) < 0)
			return errbuf_set(e, -errno, "%s: %s", f->path,
					  errno == EWOULDBLOCK
						  ? "being edited by another rps add-client or "
						    "remove-client; try again"
						  : strerror(errno));
		if (fstat(f->fd, &f->st) < 0)
			return errbuf_set(e, -errno, "%s: %s", f->path, strerror(errno));
		if (stat(f->path, &now) == 0 && now.st_dev == f->st.st_dev &&
		    now.st_ino == f->st.st_ino)
			return 0;
		close(f->fd);
		f->fd = -1;
	}
	return errbuf_set(e, -EAGAIN, "%s: replaced while opening it; try again", f->path);
}

int file_edit_open(struct file_edit *f, const char *path, size_t max, struct errbuf *e)
{
	ssize_t n;
	int r;

	*f = (struct file_edit){ .fd = -1 };
	f->path = realpath(path, NULL);
	if (!f->path)
		return errbuf_set(e, -errno, "%s: %s", path, strerror(errno));
	r = open_locked(f, e);
	if (r < 0)
		return r;
	if (!S_ISREG(f->st.st_mode))
		return errbuf_set(e, -EINVAL, "%s: not a regular file", f->path);
	if ((size_t)f->st.st_size > max)
		return errbuf_set(e, -EFBIG, "%s: too large (%lld bytes, at most %zu)", f->path,
				  (long long)f->st.st_size, max);
	/* One byte more than the size, to see a file that grew meanwhile. */
	f->text = malloc((size_t)f->st.st_size + 2);
	if (!f->text)
		return errbuf_set(e, -ENOMEM, "%s: out of memory", f->path);
	while (f->len <= (size_t)f->st.st_size) {
		n = read(f->fd, f->text + f->len, (size_t)f->st.st_size + 1 - f->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errbuf_set(e, -errno, "%s: cannot read: %s", f->path, strerror(errno));
		if (n == 0)
			break;
		f->len += (size_t)n;
	}
	if (f->len != (size_t)f->st.st_size)
		return errbuf_set(e, -EAGAIN, "%s: changed while reading it; try again", f->path);
	f->text[f->len] = '\0';
	return 0;
}

static int write_all(int fd, const char *text, size_t len)
{
	while (len) {
		ssize_t n = write(fd, text, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes target hold text, by way of a temporary file in its directory with
 * mode and f's owner, synced before it is renamed over target. */
static int replace(const struct file_edit *f, const char *target, mode_t mode, const char *text,
		   size_t len, struct errbuf *e)
{
	char *tmp = NULL;
	int fd = -1, r;

	if (asprintf(&tmp, "%s.XXXXXX", target) < 0)
		return errbuf_set(e, -ENOMEM, "out of memory");
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = errbuf_set(e, -errno, "cannot create a file beside %s: %s", target,
			       strerror(errno));
		free(tmp);
		return r;
	}
	r = fchmod(fd, mode) < 0 ? -errno : 0;
	/* Only root may give a file away; any user may keep what it has. */
	if (r == 0 && (f->st.st_uid != geteuid() || f->st.st_gid != getegid()) &&
	    fchown(fd, f->st.st_uid, f->st.st_gid) < 0)
		r = -errno;
	if (r == 0)
		r = write_all(fd, text, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, target) < 0)
		r = -errno;
	if (r < 0) {
		errbuf_set(e, r, "cannot write %s: %s", target, strerror(-r));
		unlink(tmp);
	}
	free(tmp);
	return r;
}

static int sync_dir(const char *path, struct errbuf *e)
{
	char *copy = strdup(path);
	int fd, r = 0;

	if (!copy)
		return errbuf_set(e, -ENOMEM, "out of memory");
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		r = errbuf_set(e, -errno, "cannot sync the directory of %s: %s", path,
			       strerror(errno));
	if (fd >= 0)
		close(fd);
	free(copy);
	return r;
}

int file_edit_commit(struct file_edit *f, const char *text, size_t len, struct errbuf *e)
{
	char *bak = NULL;
	int r;

	if (asprintf(&bak, "%s.bak", f->path) < 0)
		return errbuf_set(e, -ENOMEM, "out of memory");
	r = replace(f, bak, 0600, f->text, f->len, e);
	if (r == 0)
		r = replace(f, f->path, f->st.st_mode & 07777, text, len, e);
	if (r == 0)
		r = sync_dir(f->path, e);
	free(bak);
	return r;
}

void file_edit_close(struct file_edit *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->text) {
		explicit_bzero(f->text, f->len);
		free(f->text);
	}
	free(f->path);
	*f = (struct file_edit){ .fd = -1 };
}
