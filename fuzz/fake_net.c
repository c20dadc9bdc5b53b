/*
 * fake_net.c: libnet's public API on one thread, without sockets (see
 * fake_net.h for the rules it keeps). Framing and error names come from
 * libnet itself (frame.c and error.c are compiled in beside this file).
 */
#include "fake_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Settling more rounds than this means a task or callback loop: a bug. */
#define SETTLE_ROUNDS_MAX 100000

struct fake_service {
	struct net_session_config cfg;
	unsigned index;
	bool stopped;
};

struct net_server {
	struct fake_service svc;
};

struct net_client {
	struct fake_service svc;
};

struct net_loop {
	struct net_runtime *rt;
};

struct net_runtime {
	struct net_loop loop;
};

struct net_session {
	net_session_id id;
	struct fake_service *svc;
	void *user;
	bool connected;       /* on_connected ran, on_disconnected not yet     */
	bool disconnecting;   /* disconnect begun; on_disconnected is pending  */
	enum net_reason reason;
	unsigned refs;
	size_t max_frame;     /* net_session_set_max_frame; <= the service's   */
	const struct net_frame_sealer *sealer; /* net_session_set_sealer        */
	uint8_t *unread;      /* on_recv services: bytes not yet consumed      */
	size_t unread_len;
	char peer[32];
};

struct net_timer {
	net_timer_fn fn;
	void *arg;
	uint64_t due_ms, repeat_ms;
	bool armed;
	bool dead;            /* destroyed; freed when no callback can run     */
};

struct task {
	net_task_fn fn;
	void *arg;
};

/* A growable array of elements of one type. */
#define ARRAY(type) struct { type *at; size_t n, cap; }

static struct {
	struct net_runtime *rt;
	uint64_t now_ms;
	uint32_t next_slot;
	ARRAY(struct fake_service *) services;
	ARRAY(struct net_session *) sessions;
	ARRAY(struct net_timer *) timers;
	ARRAY(struct task) tasks;
	ARRAY(struct fake_sent) sent;
	bool firing;          /* timers are being fired: do not free any       */
} w;

static void *grow(void *at, size_t *cap, size_t need, size_t elem)
{
	size_t cap2 = *cap ? *cap : 8;
	void *p;

	if (need <= *cap)
		return at;
	while (cap2 < need)
		cap2 *= 2;
	p = realloc(at, cap2 * elem);
	if (!p)
		abort(); /* a fuzz harness out of memory: nothing to test */
	*cap = cap2;
	return p;
}

#define PUSH(arr, value)                                                              \
	do {                                                                          \
		(arr).at = grow((arr).at, &(arr).cap, (arr).n + 1, sizeof(*(arr).at)); \
		(arr).at[(arr).n++] = (value);                                        \
	} while (0)

/* ---- runtime and loop ---------------------------------------------------- */

int net_runtime_create(const struct net_runtime_config *cfg, struct net_runtime **out)
{
	(void)cfg;
	if (w.rt)
		return -EBUSY; /* one fake world at a time */
	memset(&w, 0, sizeof(w));
	w.rt = calloc(1, sizeof(*w.rt));
	if (!w.rt)
		return -ENOMEM;
	w.rt->loop.rt = w.rt;
	w.now_ms = 1000000; /* far from 0, like a real monotonic clock */
	w.next_slot = 1;
	*out = w.rt;
	return 0;
}

const char *net_runtime_engine(const struct net_runtime *rt)
{
	(void)rt;
	return "fake";
}

unsigned net_runtime_loop_count(const struct net_runtime *rt)
{
	(void)rt;
	return 1;
}

struct net_loop *net_runtime_loop(struct net_runtime *rt, unsigned i)
{
	return i == 0 ? &rt->loop : NULL;
}

int net_runtime_start(struct net_runtime *rt)
{
	(void)rt;
	return 0;
}

void net_runtime_stop(struct net_runtime *rt)
{
	(void)rt;
	for (size_t i = 0; i < w.services.n; i++)
		w.services.at[i]->stopped = true;
	for (size_t i = 0; i < w.sessions.n; i++)
		net_session_disconnect(w.sessions.at[i], NET_REASON_SHUTDOWN);
	fake_net_settle();
}

void net_runtime_destroy(struct net_runtime *rt)
{
	if (!rt || rt != w.rt)
		return;
	for (size_t i = 0; i < w.sessions.n; i++) {
		free(w.sessions.at[i]->user);
		free(w.sessions.at[i]);
	}
	for (size_t i = 0; i < w.timers.n; i++)
		free(w.timers.at[i]);
	for (size_t i = 0; i < w.services.n; i++)
		free(w.services.at[i]);
	fake_net_free_sent(w.sent.at, w.sent.n);
	free(w.sessions.at);
	free(w.timers.at);
	free(w.services.at);
	free(w.tasks.at);
	free(rt);
	memset(&w, 0, sizeof(w));
}

struct net_loop *net_loop_current(void)
{
	return w.rt ? &w.rt->loop : NULL;
}

unsigned net_loop_index(const struct net_loop *loop)
{
	(void)loop;
	return 0;
}

struct net_runtime *net_loop_runtime(struct net_loop *loop)
{
	return loop->rt;
}

uint64_t net_loop_now(const struct net_loop *loop)
{
	(void)loop;
	return w.now_ms;
}

int net_loop_post(struct net_loop *loop, net_task_fn fn, void *arg)
{
	(void)loop;
	PUSH(w.tasks, ((struct task){ fn, arg }));
	return 0;
}

int net_loop_post_control(struct net_loop *loop, net_task_fn fn, void *arg)
{
	return net_loop_post(loop, fn, arg);
}

/* ---- timers ---------------------------------------------------------------- */

int net_timer_create(struct net_loop *loop, net_timer_fn fn, void *arg, struct net_timer **out)
{
	struct net_timer *t = calloc(1, sizeof(*t));

	(void)loop;
	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->arg = arg;
	PUSH(w.timers, t);
	*out = t;
	return 0;
}

void net_timer_start(struct net_timer *timer, uint64_t timeout_ms, uint64_t repeat_ms)
{
	timer->armed = true;
	timer->due_ms = w.now_ms + timeout_ms;
	timer->repeat_ms = repeat_ms;
}

void net_timer_stop(struct net_timer *timer)
{
	timer->armed = false;
}

bool net_timer_active(const struct net_timer *timer)
{
	return timer->armed;
}

void net_timer_destroy(struct net_timer *timer)
{
	timer->armed = false;
	timer->dead = true;
}

/* Free destroyed timers (never while one is firing). */
static void timers_compact(void)
{
	size_t kept = 0;

	if (w.firing)
		return;
	for (size_t i = 0; i < w.timers.n; i++) {
		if (w.timers.at[i]->dead)
			free(w.timers.at[i]);
		else
			w.timers.at[kept++] = w.timers.at[i];
	}
	w.timers.n = kept;
}

void fake_net_advance(uint64_t ms)
{
	size_t count = w.timers.n; /* timers created by callbacks wait a turn */

	w.now_ms += ms;
	w.firing = true;
	for (size_t i = 0; i < count; i++) {
		struct net_timer *t = w.timers.at[i];

		if (!t->armed || t->dead || t->due_ms > w.now_ms)
			continue;
		if (t->repeat_ms)
			t->due_ms = w.now_ms + t->repeat_ms;
		else
			t->armed = false;
		t->fn(t, t->arg);
	}
	w.firing = false;
	fake_net_settle();
}

/* ---- sessions ---------------------------------------------------------------- */

net_session_id net_session_get_id(const struct net_session *s)
{
	return s->id;
}

struct net_loop *net_session_id_loop(struct net_runtime *rt, net_session_id id)
{
	/* One loop: every id this fake makes names loop 0. */
	return id && ((id >> 24) & 0xff) == 0 ? &rt->loop : NULL;
}

struct net_loop *net_session_loop(const struct net_session *s)
{
	(void)s;
	return &w.rt->loop;
}

void *net_session_user(struct net_session *s)
{
	return s->svc->cfg.user_size ? s->user : NULL;
}

void *net_session_service_user(const struct net_session *s)
{
	return s->svc->cfg.service_user;
}

const char *net_session_peer(const struct net_session *s, char *buf, size_t size)
{
	snprintf(buf, size, "%s", s->peer);
	return buf;
}

const char *net_session_peer_host(const struct net_session *s, char *buf, size_t size)
{
	const char *colon = strrchr(s->peer, ':');
	int len = colon ? (int)(colon - s->peer) : (int)strlen(s->peer);

	snprintf(buf, size, "%.*s", len, s->peer);
	return buf;
}

int net_session_error(const struct net_session *s)
{
	(void)s;
	return 0;
}

bool net_session_connected(const struct net_session *s)
{
	return s->connected && !s->disconnecting;
}

size_t net_session_send_queued(const struct net_session *s)
{
	(void)s;
	return 0;
}

/* Append a copy of len bytes (or, with data NULL, room for them) to the
 * outbox; returns the copy. */
static uint8_t *outbox_add(struct net_session *s, const void *data, size_t len, bool framed)
{
	struct fake_sent sent = {
		.session = s->id,
		.service = s->svc->index,
		.framed = framed,
		.bytes = malloc(len ? len : 1),
		.len = len,
	};

	if (!sent.bytes)
		abort();
	if (data)
		memcpy(sent.bytes, data, len);
	PUSH(w.sent, sent);
	return sent.bytes;
}

/* A frame for the outbox, through the session's sealer as libnet does. */
static void outbox_frame(struct net_session *s, const void *body, size_t len)
{
	if (!s->sealer) {
		outbox_add(s, body, len, true);
		return;
	}
	s->sealer->seal(s, outbox_add(s, NULL, len + s->sealer->overhead, true), body, len);
}

int net_session_send(struct net_session *s, const void *data, size_t len)
{
	if (!net_session_connected(s))
		return -ENOTCONN;
	if (s->sealer)
		return -EPERM;
	outbox_add(s, data, len, false);
	return 0;
}

int net_session_send_frame(struct net_session *s, const void *body, size_t len)
{
	if (!net_session_connected(s))
		return -ENOTCONN;
	outbox_frame(s, body, len);
	return 0;
}

/* Shared frames: one thread here, so a plain count; a session "queues"
 * one by copying its body into the outbox, as a send would. */
struct net_buf {
	unsigned refs;
	size_t len;
	uint8_t body[];
};

void *net_buf_frame(size_t body_len, struct net_buf **out)
{
	struct net_buf *b = malloc(sizeof(*b) + body_len);

	*out = b;
	if (!b)
		return NULL;
	b->refs = 1;
	b->len = body_len;
	return b->body;
}

const uint8_t *net_buf_body(const struct net_buf *b, size_t *len)
{
	*len = b->len;
	return b->body;
}

void net_buf_ref(struct net_buf *b)
{
	b->refs++;
}

void net_buf_unref(struct net_buf *b)
{
	if (b && --b->refs == 0)
		free(b);
}

int net_session_send_buf(struct net_session *s, struct net_buf *b)
{
	return net_session_send_frame(s, b->body, b->len);
}

int net_session_send_buf_suffixed(struct net_session *s, struct net_buf *b, const void *suffix,
				  size_t suffix_len)
{
	uint8_t *joined;
	int err;

	if (suffix_len == 0)
		return net_session_send_buf(s, b);
	joined = malloc(b->len + suffix_len);
	if (!joined)
		abort();
	memcpy(joined, b->body, b->len);
	memcpy(joined + b->len, suffix, suffix_len);
	err = net_session_send_frame(s, joined, b->len + suffix_len);
	free(joined);
	return err;
}

void net_session_set_sealer(struct net_session *s, const struct net_frame_sealer *sealer)
{
	s->sealer = sealer;
}

void net_session_set_max_frame(struct net_session *s, size_t max_frame)
{
	size_t cap = s->svc->cfg.max_frame;

	s->max_frame = max_frame == 0 || max_frame > cap ? cap : max_frame;
}

void *net_session_reserve_frame(struct net_session *s, size_t body_len, int *err)
{
	if (!net_session_connected(s)) {
		*err = -ENOTCONN;
		return NULL;
	}
	*err = 0;
	return outbox_add(s, NULL, body_len, true);
}

/* An id libnet would take apart: loop 0 is the only loop here. */
static bool id_well_formed(net_session_id id)
{
	return id != 0 && ((id >> 24) & 0xff) == 0;
}

struct net_session *fake_net_find(net_session_id id)
{
	for (size_t i = 0; i < w.sessions.n; i++) {
		if (w.sessions.at[i]->id == id)
			return w.sessions.at[i];
	}
	return NULL;
}

int net_send_to(struct net_runtime *rt, net_session_id id, const void *body, size_t len)
{
	struct net_session *s;

	(void)rt;
	if (!id_well_formed(id))
		return -EINVAL;
	s = fake_net_find(id);
	if (s && net_session_connected(s))
		outbox_frame(s, body, len);
	return 0; /* a session that has gone drops it, as libnet does */
}

void net_session_disconnect(struct net_session *s, enum net_reason reason)
{
	if (!s->connected || s->disconnecting)
		return;
	s->disconnecting = true;
	s->reason = reason;
}

void net_session_abort(struct net_session *s, enum net_reason reason)
{
	net_session_disconnect(s, reason); /* no socket: nothing to flush either way */
}

int net_disconnect_id(struct net_runtime *rt, net_session_id id, enum net_reason reason)
{
	struct net_session *s;

	(void)rt;
	if (!id_well_formed(id))
		return -EINVAL;
	s = fake_net_find(id);
	if (s)
		net_session_disconnect(s, reason);
	return 0;
}

void net_session_ref(struct net_session *s)
{
	s->refs++;
}

void net_session_unref(struct net_session *s)
{
	s->refs--; /* freed by the next settle once disconnected */
}

void fake_net_settle(void)
{
	size_t kept = 0;

	for (unsigned round = 0;; round++) {
		bool busy = false;

		if (round > SETTLE_ROUNDS_MAX) {
			fprintf(stderr, "fake_net: tasks or disconnects never settle\n");
			abort();
		}
		if (w.tasks.n) {
			/* Tasks posted by these tasks wait for the next round. */
			struct task *run = w.tasks.at;
			size_t n = w.tasks.n;

			w.tasks.at = NULL;
			w.tasks.n = w.tasks.cap = 0;
			for (size_t i = 0; i < n; i++)
				run[i].fn(&w.rt->loop, run[i].arg);
			free(run);
			busy = true;
		}
		for (size_t i = 0; i < w.sessions.n; i++) {
			struct net_session *s = w.sessions.at[i];

			if (s->connected && s->disconnecting) {
				s->connected = false;
				if (s->svc->cfg.ops->on_disconnected)
					s->svc->cfg.ops->on_disconnected(s, s->reason);
				busy = true;
			}
		}
		if (!busy)
			break;
	}
	for (size_t i = 0; i < w.sessions.n; i++) {
		struct net_session *s = w.sessions.at[i];

		if (!s->connected && s->refs == 0) {
			free(s->unread);
			free(s->user);
			free(s);
		} else {
			w.sessions.at[kept++] = s;
		}
	}
	w.sessions.n = kept;
	timers_compact();
}

/* ---- services ----------------------------------------------------------------- */

static struct fake_service *service_add(struct fake_service *svc,
					const struct net_session_config *cfg)
{
	svc->cfg = *cfg;
	if (svc->cfg.max_frame == 0)
		svc->cfg.max_frame = 65536;
	svc->index = (unsigned)w.services.n;
	PUSH(w.services, svc);
	return svc;
}

int net_server_start(struct net_runtime *rt, const struct net_server_config *cfg,
		     struct net_server **out)
{
	struct net_server *srv = calloc(1, sizeof(*srv));

	(void)rt;
	if (!srv)
		return -ENOMEM;
	service_add(&srv->svc, &cfg->session);
	*out = srv;
	return 0;
}

uint16_t net_server_port(const struct net_server *srv)
{
	return (uint16_t)(7000 + srv->svc.index);
}

static unsigned sessions_of(const struct fake_service *svc)
{
	unsigned n = 0;

	for (size_t i = 0; i < w.sessions.n; i++)
		n += w.sessions.at[i]->svc == svc && w.sessions.at[i]->connected;
	return n;
}

unsigned net_server_session_count(const struct net_server *srv)
{
	return sessions_of(&srv->svc);
}

static void service_stop(struct fake_service *svc, bool disconnect_all)
{
	svc->stopped = true;
	if (!disconnect_all)
		return;
	for (size_t i = 0; i < w.sessions.n; i++) {
		if (w.sessions.at[i]->svc == svc)
			net_session_disconnect(w.sessions.at[i], NET_REASON_SHUTDOWN);
	}
}

void net_server_stop(struct net_server *srv, bool disconnect_all)
{
	service_stop(&srv->svc, disconnect_all);
}

int net_client_start(struct net_runtime *rt, const struct net_client_config *cfg,
		     struct net_client **out)
{
	struct net_client *cli = calloc(1, sizeof(*cli));

	(void)rt;
	if (!cli)
		return -ENOMEM;
	service_add(&cli->svc, &cfg->session);
	*out = cli;
	return 0;
}

unsigned net_client_connected_count(const struct net_client *cli)
{
	return sessions_of(&cli->svc);
}

void net_client_stop(struct net_client *cli)
{
	service_stop(&cli->svc, true);
}

void net_runtime_stats(struct net_runtime *rt, struct net_stats *out)
{
	(void)rt;
	memset(out, 0, sizeof(*out));
	out->sessions_open = w.sessions.n;
}

/* ---- the harness's side ------------------------------------------------------- */

unsigned fake_net_service_count(void)
{
	return (unsigned)w.services.n;
}

struct net_session *fake_net_connect(unsigned service)
{
	struct fake_service *svc;
	struct net_session *s;
	net_session_id id;

	if (service >= w.services.n || w.services.at[service]->stopped)
		return NULL;
	svc = w.services.at[service];
	s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	s->user = calloc(1, svc->cfg.user_size ? svc->cfg.user_size : 1);
	if (!s->user)
		abort();
	/* slot | loop 0 << 24 | generation << 32: slots are never reused. */
	s->id = (net_session_id)(w.next_slot & 0xffffff) | (net_session_id)1 << 32;
	w.next_slot++;
	s->svc = svc;
	s->connected = true;
	s->max_frame = svc->cfg.max_frame;
	snprintf(s->peer, sizeof(s->peer), "127.0.0.1:%u", 40000 + (w.next_slot & 0x3fff));
	PUSH(w.sessions, s);
	id = s->id;
	if (svc->cfg.ops->on_connected)
		svc->cfg.ops->on_connected(s);
	fake_net_settle();
	s = fake_net_find(id);
	return s && net_session_connected(s) ? s : NULL;
}

int fake_net_frame(net_session_id id, const uint8_t *body, size_t len)
{
	struct net_session *s = fake_net_find(id);
	uint8_t *copy;
	int rc;

	if (!s || !net_session_connected(s))
		return -ENOTCONN;
	if (len > s->max_frame) {
		net_session_disconnect(s, NET_REASON_FRAME_TOO_LARGE);
		fake_net_settle();
		return -EMSGSIZE;
	}
	/* An exact-size copy: a read past the body is an ASan report. */
	copy = malloc(len ? len : 1);
	if (!copy)
		abort();
	memcpy(copy, body, len);
	rc = s->svc->cfg.ops->on_frame(s, copy, len);
	free(copy);
	if (rc < 0)
		net_session_disconnect(s, NET_REASON_APP_ERROR);
	fake_net_settle();
	return rc;
}

int fake_net_recv(net_session_id id, const uint8_t *data, size_t len)
{
	struct net_session *s = fake_net_find(id);
	size_t cap = s ? s->svc->cfg.recv_buffer_max : 0;
	uint8_t *buf;
	long rc;

	if (!s || !net_session_connected(s) || s->disconnecting)
		return -ENOTCONN;
	if (cap == 0)
		cap = s->svc->cfg.max_frame + 16;
	if (s->unread_len + len > cap) {
		net_session_disconnect(s, NET_REASON_RECV_OVERFLOW);
		fake_net_settle();
		return -ENOBUFS;
	}
	/* Exactly the unread bytes: a read past them is an ASan report. */
	buf = malloc(s->unread_len + len ? s->unread_len + len : 1);
	if (!buf)
		abort();
	if (s->unread_len)
		memcpy(buf, s->unread, s->unread_len);
	memcpy(buf + s->unread_len, data, len);
	len += s->unread_len;
	free(s->unread);
	s->unread = NULL;
	s->unread_len = 0;
	rc = s->svc->cfg.ops->on_recv(s, buf, len);
	if (rc < 0 || (size_t)rc > len) {
		if (rc >= 0) {
			fprintf(stderr, "fake_net: on_recv consumed %ld of %zu bytes\n", rc, len);
			abort();
		}
		net_session_disconnect(s, NET_REASON_APP_ERROR);
		free(buf);
	} else if ((size_t)rc < len) {
		memmove(buf, buf + rc, len - (size_t)rc);
		s->unread = buf;
		s->unread_len = len - (size_t)rc;
	} else {
		free(buf);
	}
	fake_net_settle();
	return rc < 0 ? (int)rc : 0;
}

void fake_net_close(net_session_id id)
{
	struct net_session *s = fake_net_find(id);

	if (s)
		net_session_disconnect(s, NET_REASON_PEER_CLOSED);
	fake_net_settle();
}

struct fake_sent *fake_net_take_sent(size_t *count)
{
	struct fake_sent *sent = w.sent.at;

	*count = w.sent.n;
	w.sent.at = NULL;
	w.sent.n = w.sent.cap = 0;
	return sent;
}

void fake_net_free_sent(struct fake_sent *sent, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(sent[i].bytes);
	free(sent);
}

size_t fake_net_stop(struct net_runtime *rt)
{
	size_t n;
	struct fake_sent *sent;

	net_runtime_stop(rt);
	sent = fake_net_take_sent(&n);
	fake_net_free_sent(sent, n);
	return w.sessions.n;
}
