/* Feeds every file of the given directories (or files) to the fuzz target
 * once, so that builds without libFuzzer still check the kept inputs. A
 * directory that is missing or holds no input fails: a replay of nothing
 * would pass while checking nothing. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;
	int r = -1;

	if (!f)
		goto out;
	if (fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0)
		goto out;
	buf = malloc(len ? (size_t)len : 1);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len)
		goto out;
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	r = 0;
out:
	if (r < 0)
		perror(path);
	free(buf);
	if (f)
		fclose(f);
	return r;
}

int main(int argc, char **argv)
{
	int n = 0, failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		struct dirent *de;
		DIR *d;
		int in_dir = 0;

		if (stat(argv[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
			failed |= replay_file(argv[i]);
			n++;
			continue;
		}
		d = opendir(argv[i]);
		if (!d) {
			perror(argv[i]);
			return 1;
		}
		while ((de = readdir(d))) {
			char path[4096];

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			failed |= replay_file(path);
			in_dir++;
		}
		closedir(d);
		if (!in_dir) {
			fprintf(stderr, "%s: no inputs to replay\n", argv[i]);
			failed = 1;
		}
		n += in_dir;
	}
	printf("replayed %d inputs\n", n);
	return failed ? 1 : 0;
}
