/*
 * Informer benchmark: N ConfigMaps listed and decoded into the cache (time, memory per
 * cached object), then N updates streamed through the watch (events/s applied, and the
 * informer's own decode+apply time per event). Prints key=value lines for run.sh.
 *   bench_informer NAMESPACE COUNT   (KUBECONFIG names the cluster)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stk/buf.h"
#include "stk/informer.h"
#include "stk/kubeconfig.h"
#include "stk/parse.h"

static stk_kube *kube;
static const char *ns;
static int64_t count;
static atomic_long next_index;
static atomic_long updates_seen;
static const char *phase = "create";

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, resident = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *writer(void *arg)
{
	stk_buf b = STK_BUF_INIT(8192);
	stk_err err = STK_ERR_INIT;
	long i;

	(void)arg;
	while ((i = atomic_fetch_add(&next_index, 1)) < count) {
		char name[32];
		int rc;
		snprintf(name, sizeof(name), "bench-%06ld", i);
		stk_buf_reset(&b);
		if (!strcmp(phase, "create")) {
			stk_buf_printf(
				&b,
				"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
				"{\"name\":\"%s\",\"labels\":{\"app\":\"bench\",\"shard\":"
				"\"%ld\"}},\"data\":{\"gateway\":\"area-%ld\",\"commit\":"
				"\"2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa\",\"note\":\"%s\"}}",
				name, i % 16, i, "some configuration text of moderate length");
			rc = stk_kube_create(kube, &STK_GVR_CONFIGMAPS, ns, b.ptr, b.len, NULL,
					     &err);
		} else {
			stk_buf_printf(&b, "{\"data\":{\"commit\":\"%040ld\"}}", i);
			rc = stk_kube_patch(kube, &STK_GVR_CONFIGMAPS, ns, name, STK_PATCH_MERGE,
					    b.ptr, b.len, NULL, NULL, &err);
		}
		if (rc && rc != STK_EEXIST) {
			fprintf(stderr, "bench: %s %s: %s\n", phase, name, err.message);
			exit(1);
		}
	}
	stk_buf_release(&b);
	return NULL;
}

static void run_writers(const char *what)
{
	pthread_t t[8];
	phase = what;
	atomic_store(&next_index, 0);
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, writer, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
}

static void on_update(stk_obj *old, stk_obj *cur, void *arg)
{
	(void)old;
	(void)cur;
	(void)arg;
	atomic_fetch_add(&updates_seen, 1);
}

struct world {
	stk_loop *loop;
	stk_curlm *curlm;
	stk_informer *inf;
};

static void *loop_main(void *arg)
{
	stk_loop_run(arg);
	return NULL;
}

static void start_informer(void *arg)
{
	struct world *w = arg;
	struct stk_informer_opts o = STK_INFORMER_OPTS_INIT;
	struct stk_informer_handler h = {NULL, on_update, NULL, NULL};

	stk_curlm_new(&w->curlm, w->loop, NULL);
	o.gvr = &STK_GVR_CONFIGMAPS;
	o.ns = ns;
	o.label_selector = "app=bench";
	stk_informer_new(&w->inf, w->loop, w->curlm, kube, &o, NULL);
	stk_informer_add_handler(w->inf, &h);
	stk_informer_start(w->inf);
}

static void stop_informer(void *arg)
{
	struct world *w = arg;
	stk_informer_free(w->inf);
	stk_curlm_free(w->curlm);
	stk_loop_shutdown(w->loop);
}

int main(int argc, char **argv)
{
	struct stk_kubeconfig_opts ko = STK_KUBECONFIG_OPTS_INIT;
	struct stk_kubeconfig *cfg = NULL;
	struct stk_informer_stats st;
	struct world w = {0};
	stk_err err = STK_ERR_INIT;
	pthread_t lt;
	uint64_t t0, t_list, t_watch;
	long rss0, rss1;

	if (argc != 3 || stk_parse_i64(argv[2], strlen(argv[2]), 1, 1000000, &count, NULL)) {
		fprintf(stderr, "usage: bench_informer NAMESPACE COUNT\n");
		return 2;
	}
	ns = argv[1];
	if (stk_kubeconfig_load(&cfg, &ko, &err) || stk_kube_new_take(&kube, cfg, NULL, &err)) {
		fprintf(stderr, "bench: %s\n", err.message);
		return 1;
	}
	t0 = stk_now_ms();
	run_writers("create");
	printf("create_seconds=%.2f\n", (double)(stk_now_ms() - t0) / 1000.0);

	stk_loop_new(&w.loop, NULL);
	rss0 = rss_kib();
	t0 = stk_now_ms();
	pthread_create(&lt, NULL, loop_main, w.loop);
	stk_loop_post(w.loop, start_informer, &w);
	while (!w.inf || !stk_informer_synced(w.inf))
		usleep(1000);
	t_list = stk_now_ms() - t0;
	rss1 = rss_kib();
	printf("objects=%zu\n", stk_informer_len(w.inf));
	printf("list_seconds=%.3f\n", (double)t_list / 1000.0);
	printf("rss_before_kib=%ld\nrss_after_kib=%ld\n", rss0, rss1);
	printf("bytes_per_object=%.0f\n", (double)(rss1 - rss0) * 1024.0 / (double)count);

	t0 = stk_now_ms();
	run_writers("update");
	while (atomic_load(&updates_seen) < count)
		usleep(1000);
	t_watch = stk_now_ms() - t0;
	stk_informer_stats(w.inf, &st);
	printf("watch_events=%llu\n", (unsigned long long)st.events);
	printf("watch_seconds=%.3f\n", (double)t_watch / 1000.0);
	printf("watch_events_per_second=%.0f\n", (double)count * 1000.0 / (double)t_watch);
	printf("decode_apply_us_per_event=%.1f\n",
	       (double)st.watch_apply_ns / 1000.0 / (double)(st.events ? st.events : 1));
	printf("decode_apply_events_per_second=%.0f\n",
	       (double)st.events * 1e9 / (double)(st.watch_apply_ns ? st.watch_apply_ns : 1));
	stk_loop_post(w.loop, stop_informer, &w);
	pthread_join(lt, NULL);
	stk_loop_free(w.loop);
	stk_kube_free(kube);
	return 0;
}
