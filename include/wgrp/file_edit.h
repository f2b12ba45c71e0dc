/* Replacing a config file the way an admin tool must: under a lock against a
 * second editor, the new version written beside it (same mode and owner),
 * synced and renamed over it, the directory synced; the previous version kept
 * as FILE.bak (mode 0600). A crash at any point leaves either version whole. */
#pragma once

#include <stddef.h>
#include <sys/stat.h>

#include "wgrp/diag.h"

struct file_edit {
	int fd;     /* the file, read and locked; -1 when closed */
	char *path; /* the file itself, symbolic links resolved */
	struct stat st;
	char *text; /* its contents (len bytes, NUL after them); wiped on close */
	size_t len;
};

/* Opens the file at path (at most max bytes), locks it against other
 * file_edit users (not waiting: a second editor is told to try again), and
 * reads it. Returns 0, or -errno with the reason in e (-EWOULDBLOCK: locked). */
int file_edit_open(struct file_edit *f, const char *path, size_t max, struct errbuf *e);

/* Writes path.bak with the text read, then replaces the file with text (len
 * bytes). Returns 0, or -errno with the reason in e: the file is then as it
 * was, unless only the sync of the directory after the rename failed. */
int file_edit_commit(struct file_edit *f, const char *text, size_t len, struct errbuf *e);

/* Unlocks, wipes and frees; accepts a closed or zeroed-then-failed f. */
void file_edit_close(struct file_edit *f);
