/* Replacing a config file: the new text in place with the old mode, the old
 * text in FILE.bak (0600), a second editor refused, symbolic links followed
 * to the file they name, no temporary file left behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "wgrp/file_edit.h"

static char dir[] = "/tmp/file_edit_test.XXXXXX";
static char path[64], bak[64];

static void write_file(const char *p, const char *text, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void assert_file(const char *p, const char *want, mode_t mode)
{
	char buf[256];
	struct stat st;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, (ssize_t)strlen(want));
	assert_memory_equal(buf, want, (size_t)n);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, mode);
}

static size_t entries(void)
{
	DIR *d = opendir(dir);
	size_t n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/wg0.conf", dir);
	snprintf(bak, sizeof(bak), "%s/wg0.conf.bak", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void replaces_keeping_a_backup(void **state)
{
	struct file_edit f;
	struct errbuf e;

	(void)state;
	write_file(path, "old\n", 0640);
	assert_int_equal(file_edit_open(&f, path, 1000, &e), 0);
	assert_int_equal(f.len, 4);
	assert_string_equal(f.text, "old\n");
	assert_int_equal(file_edit_commit(&f, "new text\n", 9, &e), 0);
	file_edit_close(&f);
	assert_file(path, "new text\n", 0640);
	assert_file(bak, "old\n", 0600);
	assert_int_equal(entries(), 2);

	/* Again: the backup is the version just before. */
	assert_int_equal(file_edit_open(&f, path, 1000, &e), 0);
	assert_int_equal(file_edit_commit(&f, "newer\n", 6, &e), 0);
	file_edit_close(&f);
	assert_file(path, "newer\n", 0640);
	assert_file(bak, "new text\n", 0600);
}

static void a_second_editor_is_refused(void **state)
{
	struct file_edit f, g;
	struct errbuf e;

	(void)state;
	write_file(path, "x\n", 0600);
	assert_int_equal(file_edit_open(&f, path, 1000, &e), 0);
	assert_int_equal(file_edit_open(&g, path, 1000, &e), -EWOULDBLOCK);
	assert_contains(e.msg, "being edited by another rps add-client or remove-client; try again");
	file_edit_close(&g);
	file_edit_close(&f);
	assert_int_equal(file_edit_open(&g, path, 1000, &e), 0);
	file_edit_close(&g);
}

static void follows_a_link_to_the_file(void **state)
{
	char link[80];
	struct file_edit f;
	struct errbuf e;
	struct stat st;

	(void)state;
	write_file(path, "x\n", 0600);
	snprintf(link, sizeof(link), "%s/link.conf", dir);
	assert_int_equal(symlink("wg0.conf", link), 0);
	assert_int_equal(file_edit_open(&f, link, 1000, &e), 0);
	assert_int_equal(file_edit_commit(&f, "y\n", 2, &e), 0);
	file_edit_close(&f);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_file(path, "y\n", 0600);
	assert_file(bak, "x\n", 0600);
	unlink(link);
}

static void refuses_what_it_cannot_edit(void **state)
{
	struct file_edit f;
	struct errbuf e;
	char missing[80];

	(void)state;
	write_file(path, "0123456789\n", 0600);
	assert_int_equal(file_edit_open(&f, path, 10, &e), -EFBIG);
	assert_contains(e.msg, "too large (11 bytes, at most 10)");
	file_edit_close(&f);
	snprintf(missing, sizeof(missing), "%s/none.conf", dir);
	assert_int_equal(file_edit_open(&f, missing, 10, &e), -ENOENT);
	assert_contains(e.msg, "none.conf: No such file or directory");
	file_edit_close(&f);
	assert_int_equal(file_edit_open(&f, dir, 10, &e), -EINVAL);
	assert_contains(e.msg, "not a regular file");
	file_edit_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(replaces_keeping_a_backup),
		cmocka_unit_test(a_second_editor_is_refused),
		cmocka_unit_test(follows_a_link_to_the_file),
		cmocka_unit_test(refuses_what_it_cannot_edit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
