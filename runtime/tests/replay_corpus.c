/*
 * Replays a libFuzzer seed corpus through LLVMFuzzerTestOneInput without libFuzzer, so the
 * corpus runs as a plain ctest under any compiler and sanitizer. Arguments are files or
 * directories (one level). Exits non-zero if nothing was replayed.
 */
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
	uint8_t *data = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		perror(path);
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			data = realloc(data, cap);
			if (!data)
				abort();
		}
		n = fread(data + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	/* Hand the fuzzer an exact-size copy so ASan catches reads past the input. */
	{
		uint8_t *exact = malloc(len ? len : 1);
		if (!exact)
			abort();
		memcpy(exact, data, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	int count = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *e;
			if (!d) {
				perror(argv[i]);
				return 1;
			}
			while ((e = readdir(d)) != NULL) {
				char path[4096];
				if (e->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
				if (replay_file(path) != 0)
					return 1;
				count++;
			}
			closedir(d);
		} else {
			if (replay_file(argv[i]) != 0)
				return 1;
			count++;
		}
	}
	printf("replayed %d inputs\n", count);
	return count > 0 ? 0 : 1;
}
