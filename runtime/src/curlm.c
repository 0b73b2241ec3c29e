#include "stk/curlm.h"

#include <stdbool.h>
#include <stdlib.h>

#include "stk/alloc.h"

/* Per transfer bookkeeping, stored as the easy handle's CURLOPT_PRIVATE. */
struct curlm_xfer {
	CURL *easy;
	stk_curlm_done_fn done;
	void *arg;
	void *prev_private;
	struct curlm_xfer *prev, *next; /* the running transfers */
};

/* One watched socket. Freed in the uv close callback. */
struct curlm_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	stk_curlm *m;
};

struct stk_curlm {
	stk_loop *loop;
	CURLM *multi;
	uv_timer_t timer;
	size_t running;
	struct curlm_xfer *xfers;
	bool closing;
};

static void curlm_unlink(stk_curlm *m, struct curlm_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		m->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	m->running--;
}

static void curlm_check_done(stk_curlm *m)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
		CURL *easy;
		struct curlm_xfer *x = NULL;
		CURLcode result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		result = msg->data.result;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(m->multi, easy);
		if (x) {
			curlm_unlink(m, x);
			stk_curlm_done_fn done = x->done;
			void *arg = x->arg;
			curl_easy_setopt(easy, CURLOPT_PRIVATE, x->prev_private);
			free(x);
			/* The callback may free or re-add the easy handle. */
			if (done)
				done(easy, result, arg);
		}
	}
}

static void curlm_on_poll(uv_poll_t *p, int status, int events)
{
	struct curlm_sock *s = p->data;
	stk_curlm *m = s->m;
	int flags = 0, still;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(m->multi, s->fd, flags, &still);
	curlm_check_done(m);
}

static void curlm_on_timer(uv_timer_t *t)
{
	stk_curlm *m = t->data;
	int still;

	curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &still);
	curlm_check_done(m);
}

static int curlm_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	stk_curlm *m = arg;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&m->timer);
	else
		/* 0 means "as soon as possible": fire on the next loop iteration. */
		uv_timer_start(&m->timer, curlm_on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

static void curlm_sock_closed(uv_handle_t *h)
{
	free(h->data);
}

static int curlm_socket_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	stk_curlm *m = arg;
	struct curlm_sock *s = sockp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			uv_poll_stop(&s->poll);
			if (!m->closing)
				curl_multi_assign(m->multi, fd, NULL);
			uv_close((uv_handle_t *)&s->poll, curlm_sock_closed);
		}
		return 0;
	}
	if (!s) {
		s = stk_calloc(1, sizeof(*s));
		s->fd = fd;
		s->m = m;
		if (uv_poll_init_socket(stk_loop_uv(m->loop), &s->poll, fd) != 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		curl_multi_assign(m->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	uv_poll_start(&s->poll, events, curlm_on_poll);
	return 0;
}

int stk_curlm_new(stk_curlm **out, stk_loop *loop, stk_err *err)
{
	stk_curlm *m = stk_calloc(1, sizeof(*m));

	curl_global_init(CURL_GLOBAL_DEFAULT);
	m->loop = loop;
	m->multi = curl_multi_init();
	if (!m->multi) {
		free(m);
		return stk_err_set(err, STK_EIO, "curl_multi_init failed");
	}
	uv_timer_init(stk_loop_uv(loop), &m->timer);
	m->timer.data = m;
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, curlm_socket_cb);
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, curlm_timer_cb);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
	*out = m;
	return 0;
}

int stk_curlm_add(stk_curlm *m, CURL *easy, stk_curlm_done_fn done, void *arg, stk_err *err)
{
	struct curlm_xfer *x = stk_calloc(1, sizeof(*x));
	CURLMcode mc;

	x->easy = easy;
	x->done = done;
	x->arg = arg;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x->prev_private);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	mc = curl_multi_add_handle(m->multi, easy);
	if (mc != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, x->prev_private);
		free(x);
		return stk_err_set(err, STK_EIO, "curl_multi_add_handle: %s",
				   curl_multi_strerror(mc));
	}
	x->next = m->xfers;
	if (m->xfers)
		m->xfers->prev = x;
	m->xfers = x;
	m->running++;
	return 0;
}

void stk_curlm_remove(stk_curlm *m, CURL *easy)
{
	struct curlm_xfer *x = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	if (!x)
		return;
	/* Only handles on our list are ours to remove (PRIVATE may be someone else's). */
	for (struct curlm_xfer *y = m->xfers; y; y = y->next) {
		if (y != x)
			continue;
		curl_multi_remove_handle(m->multi, easy);
		curlm_unlink(m, x);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, x->prev_private);
		free(x);
		return;
	}
}

size_t stk_curlm_running(const stk_curlm *m)
{
	return m->running;
}

static void curlm_timer_closed(uv_handle_t *h)
{
	stk_curlm *m = h->data;

	free(m);
}

void stk_curlm_free(stk_curlm *m)
{
	if (!m)
		return;
	/* Detach every remaining transfer; their owners still hold the easy handles. */
	while (m->xfers)
		stk_curlm_remove(m, m->xfers->easy);
	m->closing = true;
	curl_multi_cleanup(m->multi);
	uv_timer_stop(&m->timer);
	uv_close((uv_handle_t *)&m->timer, curlm_timer_closed);
}
