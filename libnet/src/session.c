/*
 * Sessions: one connection each (the seeds' Session).
 *
 * State machine (all on the session's loop thread), with the function that
 * performs each transition:
 *
 *            net__session_acquire()              connect_done(0)
 *   FREE -------------------------> CONNECTING -----------------> CONNECTED
 *    ^                               |   |  (become_connected)      ^  |
 *    |          accepted: net__session_open_accepted() ------------+  |
 *    |                               |   |                             |
 *    |    dial could not start:      |   | connect_done(<0), the       |
 *    |    dial() in client.c         |   | connect timeout, or a       |
 *    |    (no op in flight)          |   | disconnect while dialing    |
 *    |                               |   v (abort_close)               |
 *    |                               | CLOSING <-----------------------+
 *    |                               |   |    net_session_disconnect(reason)
 *    |   accepted but attach failed: |   |    (or net__session_fail())
 *    |   net__session_open_accepted()|   |
 *    |                               v   v    finish(), from check() at the
 *    +--- release_to_pool() <------ CLOSED    end of the turn: socket closed,
 *         (net_session_unref(),               on_disconnected if on_connected
 *          last ref)                          ran, the service told
 *
 * CLOSING, step by step: queued sends are flushed (send_done), then the
 * write side is shut (shut_write: a SHUTDOWN op), so the peer reads EOF
 * after the last byte; received bytes are read and discarded until the
 * peer's EOF (recv_done sets peer_eof); finish() runs once both are done
 * and no op is in flight. The flush deadline (net__session_deadline), an I/O
 * error (net__session_fail) or a failed dial sets aborting instead
 * (abort_close): everything in flight is cancelled and finish() runs when
 * it is back.
 *
 * The send queue's allocator is sendq.c; what is done with received bytes
 * (framing, rbuf) is recv.c. A TLS session (tls.c) has two hooks here:
 * received bytes go through net__tls_recv before recv.c, and a SEND
 * carries the records net__tls_next_send made from the queued plaintext.
 *
 * Invariants:
 *   - ops_in_flight counts submitted ops without their final completion;
 *     the socket is closed and the session released only when it is 0
 *     (the seeds' `owner` reference, made a count).
 *   - At most one RECV and one SEND are in flight; a SEND carries all
 *     queued bytes (gathered), so writes never interleave.
 *   - The loop holds one ref from acquire until CLOSED; the session goes
 *     back to its service's pool on the last unref.
 *   - Receive: engine buffers are released inside the completion; only
 *     unconsumed bytes are copied to rbuf, which is freed once empty, so an
 *     idle session holds no receive buffer.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* An idle connection's memory is mostly this object (issue 12): keep it
 * from creeping back. IOCP's ops carry an OVERLAPPED, so Windows has its
 * own, larger figure. */
#ifndef _WIN32
_Static_assert(sizeof(struct net_session) <= 256, "struct net_session grew past 256 bytes");
#endif

static void shut_write(struct net_session *s);
static void abort_close(struct net_session *s);
static void resume_recv(struct net_session *s);
static void check_deadlines(struct net_session *s);
static void track_partial_frame(struct net_session *s);

/* ---- ids, pool ------------------------------------------------------------ */

static net_session_id make_id(uint32_t slot, unsigned loop_index, uint32_t generation)
{
	return (net_session_id)slot | (net_session_id)loop_index << 24 |
	       (net_session_id)generation << 32;
}

struct net_session *net__session_lookup(struct net_loop *loop, net_session_id id)
{
	uint32_t slot = (uint32_t)(id & 0xffffff);
	struct net_session *s;

	if (slot >= loop->slot_count)
		return NULL;
	s = net__slot(loop, slot);
	return s->generation == (uint32_t)(id >> 32) ? s : NULL;
}

/*
 * Sessions are carved from per-loop slabs of NET__SLAB_SESSIONS, so that
 * each carries no malloc header of its own (an idle connection's memory is
 * mostly its session: issue 12). A slab holds sessions of one size
 * (services differ by user_size). Sessions are pooled by their service and
 * never freed one by one: slabs are freed with the loop.
 */
#define NET__SLAB_SESSIONS 64

struct net__slab {
	struct net__slab *next;       /* the loop's slabs, newest first       */
	size_t size;                  /* of each session carved from it       */
	unsigned left;                /* sessions not carved yet              */
	max_align_t data[];
};

/* The newest slab of sessions of this size, or NULL. */
static struct net__slab *slab_of(struct net_loop *loop, size_t size)
{
	struct net__slab *slab = loop->slabs;

	while (slab && slab->size != size)
		slab = slab->next;
	return slab;
}

/* A zeroed session of `size` bytes (a multiple of max_align_t), or NULL. */
static struct net_session *session_carve(struct net_loop *loop, size_t size)
{
	struct net__slab *slab = slab_of(loop, size);
	struct net_session *s;

	if (!slab || !slab->left) {
		/* Not zeroed: only the pages of sessions carved become resident. */
		slab = malloc(sizeof(*slab) + NET__SLAB_SESSIONS * size);
		if (!slab)
			return NULL;
		slab->size = size;
		slab->left = NET__SLAB_SESSIONS;
		slab->next = loop->slabs;
		loop->slabs = slab;
	}
	s = (struct net_session *)((char *)slab->data + (NET__SLAB_SESSIONS - slab->left) * size);
	slab->left--;
	memset(s, 0, size);
	return s;
}

static struct net_session *session_new(struct net__service *svc, struct net_loop *loop)
{
	struct net_session *s;
	size_t size;

	if (loop->slot_count >= 0xffffff)
		return NULL;
	if (net__pages_reserve(&loop->slots, loop->slot_count + 1))
		return NULL;
	size = (sizeof(*s) + svc->cfg.user_size + sizeof(max_align_t) - 1) /
	       sizeof(max_align_t) * sizeof(max_align_t);
	s = session_carve(loop, size);
	if (!s)
		return NULL;
	if (net__tnode_init(&s->deadline, loop, true)) {
		slab_of(loop, size)->left++; /* the one just carved goes back */
		return NULL;
	}
	s->loop = loop;
	s->service = svc;
	s->slot = loop->slot_count;
	*net__page_at(&loop->slots, loop->slot_count++) = s;
	s->recv_op.type = NET__OP_RECV;
	return s;
}

struct net_session *net__session_acquire(struct net__service *svc, struct net_loop *loop)
{
	struct net_session *s = svc->pool[loop->index];

	if (s) {
		svc->pool[loop->index] = s->pool_next;
		NET__COUNT(loop, reused, 1);
	} else {
		s = session_new(svc, loop);
		if (!s)
			return NULL;
	}
	s->pool_next = NULL;
	s->generation++;
	if (s->generation == 0)
		s->generation = 1;
	s->state = NET__S_CONNECTING;
	s->reason = NET_REASON_NONE;
	s->error = 0;
	atomic_store(&s->refs, 1);
	s->was_connected = false;
	s->shutdown_started = false;
	s->peer_eof = false;
	s->aborting = false;
	s->recv_paused = false;
	s->recv_starved = false;
	s->addr_counted = false;
	s->partial_since_ms = 0;
	s->max_frame = (uint32_t)svc->cfg.max_frame;
	s->sealer = NULL;
	memset(&s->peer, 0, sizeof(s->peer));
	s->handle = (struct net__handle){0};
	memset(s->user, 0, svc->cfg.user_size);
	return s;
}

static void release_to_pool(struct net_session *s)
{
	struct net__service *svc = s->service;

	s->state = NET__S_FREE;
	/* A new generation at once, so stale ids stop matching right now. */
	s->generation++;
	s->pool_next = svc->pool[s->loop->index];
	svc->pool[s->loop->index] = s;
}

static void unref_on_loop(struct net_loop *loop, void *arg)
{
	(void)loop;
	release_to_pool(arg);
}

void net_session_ref(struct net_session *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void net_session_unref(struct net_session *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	/* The pool is the loop's: hand the release to it. If the post fails
	 * (the loop is gone), the session stays out of the pool; the runtime
	 * frees it with the loop. */
	if (net__on_loop(s->loop))
		release_to_pool(s);
	else
		(void)net_loop_post_control(s->loop, unref_on_loop, s);
}

/* ---- accessors ------------------------------------------------------------ */

net_session_id net_session_get_id(const struct net_session *s)
{
	return make_id(s->slot, s->loop->index, s->generation);
}
struct net_loop *net_session_loop(const struct net_session *s) { return s->loop; }
void *net_session_service_user(const struct net_session *s) { return s->service->cfg.service_user; }
const char *net_session_peer(const struct net_session *s, char *buf, size_t size)
{
	/* Made on demand: the session keeps 20 bytes, not the text. */
	net__addr_format(&s->peer, buf, size, true);
	return buf;
}

const char *net_session_peer_host(const struct net_session *s, char *buf, size_t size)
{
	net__addr_format(&s->peer, buf, size, false);
	return buf;
}
int net_session_error(const struct net_session *s) { return s->error; }
size_t net_session_send_queued(const struct net_session *s) { return s->sq_bytes; }

void *net_session_user(struct net_session *s)
{
	return s->service->cfg.user_size ? (void *)s->user : NULL;
}

bool net_session_connected(const struct net_session *s)
{
	return s->state == NET__S_CONNECTED;
}

void net_session_set_max_frame(struct net_session *s, size_t max_frame)
{
	size_t cap = s->service->cfg.max_frame;

	s->max_frame = (uint32_t)(max_frame == 0 || max_frame > cap ? cap : max_frame);
}

void net_session_set_sealer(struct net_session *s, const struct net_frame_sealer *sealer)
{
	s->sealer = sealer;
}

/* ---- end-of-turn lists ---------------------------------------------------- */

/* Queue a session for a re-check at the end of the loop turn. */
static void check_later(struct net_session *s)
{
	if (s->on_check_list)
		return;
	s->on_check_list = true;
	s->check_next = s->loop->check_list;
	s->loop->check_list = s;
}

static void send_later(struct net_session *s)
{
	if (s->wop && s->wop->type == NET__OP_SEND)
		return; /* send_done looks again */
	if (s->on_send_list)
		return;
	s->on_send_list = true;
	s->send_next = s->loop->send_list;
	s->loop->send_list = s;
}

/* Bytes still to hand to the engine: queued plaintext, and for TLS the
 * records (and alerts) not yet sent. */
static bool send_pending(const struct net_session *s)
{
	return s->sq_bytes || (s->tls && net__tls_pending(s));
}

/* ---- posting ops ----------------------------------------------------------- */

static int post_op(struct net_session *s, struct net__op *op)
{
	int err;

	op->handle = &s->handle;
	op->owner = s;
	op->cancel_requested = false;
	err = net__engine_submit(s->loop, op);
	if (err)
		return err;
	op->in_flight = true;
	s->ops_in_flight++;
	return 0;
}

/*
 * A CONNECT or SHUTDOWN op of its own for the write side (freed at its
 * completion), posted. -ENOMEM, or the engine's error: nothing is kept.
 */
static int post_ctl(struct net_session *s, enum net__op_type type,
		    const struct sockaddr_storage *addr, socklen_t addr_len)
{
	struct net__op *op = calloc(1, sizeof(*op));
	int err;

	if (!op)
		return -ENOMEM;
	op->type = type;
	op->addr = addr;
	op->addr_len = addr_len;
	err = post_op(s, op);
	if (err) {
		free(op);
		return err;
	}
	s->wop = op;
	return 0;
}

static void cancel_op(struct net_session *s, struct net__op *op)
{
	if (op && op->in_flight && !op->cancel_requested) {
		op->cancel_requested = true;
		net__engine_cancel(s->loop, op);
	}
}

void net__session_fail(struct net_session *s, enum net_reason reason, int err)
{
	if (!s->error)
		s->error = err;
	net_session_disconnect(s, reason);
	/* An I/O error means the socket is done: no flush (also when the
	 * session was already closing for another reason). */
	if (reason == NET_REASON_IO_ERROR)
		abort_close(s);
}

/*
 * Keep one receive posted while connected (unless PAUSE holds it back) and
 * while closing until the peer's EOF: a closing session reads and discards,
 * since unread bytes at close() make the kernel reset the connection and
 * throw away what it has not sent yet.
 */
static void post_recv(struct net_session *s)
{
	bool reading = s->state == NET__S_CONNECTED ? !s->recv_paused
			: s->state == NET__S_CLOSING && !s->peer_eof && !s->aborting;
	int err;

	if (!reading || s->recv_op.in_flight)
		return;
	err = post_op(s, &s->recv_op);
	if (!err)
		return;
	if (s->state == NET__S_CONNECTED) {
		net__session_fail(s, NET_REASON_IO_ERROR, err);
	} else {
		/* Closing: stop lingering; the flush still completes. */
		s->peer_eof = true;
		check_later(s);
	}
}

/* ---- opening ---------------------------------------------------------------- */

static void become_connected(struct net_session *s)
{
	struct net_loop *loop = s->loop;
	int err;

	s->state = NET__S_CONNECTED;
	s->was_connected = true;
	s->last_recv_ms = loop->now_ms;
	NET__COUNT(loop, sessions_open, 1);
	atomic_fetch_add(&s->service->live, 1);
	if (!s->peer.family)
		net__sock_peer_addr(s->handle.sock, &s->peer);
	check_deadlines(s);
	/* TLS first, so on_connected's sends queue behind the handshake. */
	err = s->service->cfg.tls ? net__tls_open(s) : 0;
	if (s->service->cfg.ops->on_connected)
		s->service->cfg.ops->on_connected(s);
	if (err)
		net__session_fail(s, NET_REASON_IO_ERROR, err);
	else if (send_pending(s))
		send_later(s); /* a client's ClientHello */
	track_partial_frame(s); /* TLS: the handshake's deadline */
	post_recv(s);
}

void net__session_open_accepted(struct net_session *s, net__sock_t sock)
{
	int err;

	s->handle.sock = sock;
	net__sock_tune(sock, s->service->cfg.socket_send_buffer);
	err = net__engine_attach(s->loop, &s->handle);
	if (err) {
		net__sock_close(sock);
		s->state = NET__S_CLOSED;
		net__server_session_closed(s);
		net_session_unref(s);
		return;
	}
	NET__COUNT(s->loop, accepted, 1);
	become_connected(s);
}

int net__session_dial(struct net_session *s, const struct sockaddr_storage *addr,
		      socklen_t addr_len, uint32_t timeout_ms)
{
	int err = net__sock_stream(addr->ss_family, &s->handle.sock);

	if (err)
		return err;
	net__sock_tune(s->handle.sock, s->service->cfg.socket_send_buffer);
	err = net__engine_attach(s->loop, &s->handle);
	if (err)
		goto out_close;
	err = post_ctl(s, NET__OP_CONNECT, addr, addr_len);
	if (err)
		goto out_detach;
	net__tnode_start(s->loop, &s->deadline, timeout_ms);
	return 0;

out_detach:
	net__engine_detach(s->loop, &s->handle);
out_close:
	net__sock_close(s->handle.sock);
	return err;
}

/* ---- closing ---------------------------------------------------------------- */

/*
 * Everything queued went out: shut the write side down, so the peer reads
 * EOF right after the last byte. Reading goes on until the peer's EOF (or
 * the flush deadline), then finish() closes.
 */
static void shut_write(struct net_session *s)
{
	int err;

	if (s->shutdown_started || s->aborting)
		return;
	s->shutdown_started = true;
	err = post_ctl(s, NET__OP_SHUTDOWN, NULL, 0);
	/* No shutdown op: close() at finish still ends the connection. */
	(void)err;
	check_later(s);
}

/* Stop waiting (the flush deadline passed, the socket failed, or a dial
 * ended): cancel what is in flight; finish() closes once it is back. */
static void abort_close(struct net_session *s)
{
	if (s->aborting)
		return;
	s->aborting = true;
	net__tnode_stop(s->loop, &s->deadline);
	cancel_op(s, &s->recv_op);
	cancel_op(s, s->wop);
	check_later(s);
}

/* net_session_disconnect and net_session_abort: abortive skips the flush
 * and the wait for the peer's EOF. */
static void begin_close(struct net_session *s, enum net_reason reason, bool abortive)
{
	if (s->state == NET__S_CONNECTING) {
		/* A dial in progress just ends; connect_done closes it. */
		s->reason = reason;
		cancel_op(s, s->wop);
		return;
	}
	if (s->state != NET__S_CONNECTED)
		return;
	s->state = NET__S_CLOSING;
	s->reason = reason;
	NET__COUNT(s->loop, disconnects[reason < NET_REASON_COUNT ? reason : NET_REASON_LOCAL], 1);
	if (abortive || reason == NET_REASON_IO_ERROR) {
		abort_close(s);
		return;
	}
	/* One deadline for the flush and the wait for the peer's EOF. */
	net__tnode_start(s->loop, &s->deadline, s->service->cfg.flush_timeout_ms);
	post_recv(s); /* a PAUSE-held receive drains now */
	if (!send_pending(s))
		shut_write(s);
	else
		send_later(s); /* TLS: a close_notify or an alert to write */
}

void net_session_disconnect(struct net_session *s, enum net_reason reason)
{
	begin_close(s, reason, false);
}

void net_session_abort(struct net_session *s, enum net_reason reason)
{
	begin_close(s, reason, true);
}

/* The last op of a closing (or failed-dial) session completed. */
static void finish(struct net_session *s)
{
	struct net_loop *loop = s->loop;
	const struct net_session_ops *ops = s->service->cfg.ops;
	bool was_connected = s->was_connected;

	net__tnode_stop(s->loop, &s->deadline);
	net__engine_detach(loop, &s->handle);
	net__sock_close(s->handle.sock);
	net__rbuf_free(s);
	net__sq_free(s);
	s->state = NET__S_CLOSED;
	if (was_connected) {
		NET__COUNT(loop, sessions_open, -1);
		atomic_fetch_sub(&s->service->live, 1);
		if (ops->on_disconnected)
			ops->on_disconnected(s, s->reason);
	}
	net__tls_close(s); /* after: net_session_tls_error stays readable */
	net__service_session_closed(s);
	net_session_unref(s);
}

static void check(struct net_session *s)
{
	if (s->recv_starved) {
		s->recv_starved = false;
		post_recv(s);
	}
	if (s->state == NET__S_CLOSING && s->ops_in_flight == 0 &&
	    (s->aborting || (s->shutdown_started && s->peer_eof)))
		finish(s);
}

/* Arm the session timer for `due` unless it already fires sooner. */
static void arm_by(struct net_session *s, uint64_t due)
{
	uint64_t now = s->loop->now_ms;

	if (!net__tnode_active(&s->deadline) || s->deadline.due > due)
		net__tnode_start(s->loop, &s->deadline, due > now ? due - now : 0);
}

/*
 * A connected session's two deadlines share its one timer, checked lazily
 * when it fires: traffic only stamps times, it never touches the heap.
 *   idle:  nothing received for idle_timeout_ms;
 *   frame: a frame begun (partial_since_ms) not completed within
 *          frame_timeout_ms, which catches a slowloris that trickles
 *          bytes to dodge the idle timeout.
 */
static void check_deadlines(struct net_session *s)
{
	const struct net_session_config *cfg = &s->service->cfg;
	uint64_t now = s->loop->now_ms, next = UINT64_MAX;
	/* The stamps keep the clock's low 32 bits: differences in 32 bits
	 * are right for spans under 49 days, and every timeout is shorter. */
	uint32_t now32 = (uint32_t)now;

	if (cfg->frame_timeout_ms && s->partial_since_ms) {
		uint32_t spent = now32 - s->partial_since_ms;

		if (spent >= cfg->frame_timeout_ms) {
			net_session_disconnect(s, NET_REASON_FRAME_TIMEOUT);
			return;
		}
		next = now + (cfg->frame_timeout_ms - spent);
	}
	if (cfg->idle_timeout_ms) {
		uint32_t quiet = now32 - s->last_recv_ms;

		if (quiet >= cfg->idle_timeout_ms) {
			net_session_disconnect(s, NET_REASON_IDLE_TIMEOUT);
			return;
		}
		if (now + (cfg->idle_timeout_ms - quiet) < next)
			next = now + (cfg->idle_timeout_ms - quiet);
	}
	if (next != UINT64_MAX)
		net__tnode_start(s->loop, &s->deadline, next - now);
}

/* After input: start or clear the partial-frame clock. Input held back
 * by PAUSE is ours to blame, not the peer's, so it does not count. A TLS
 * handshake counts as a frame begun: it must end within the same limit,
 * so a peer cannot dribble a ClientHello to hold a session. */
static void track_partial_frame(struct net_session *s)
{
	uint32_t limit = s->service->cfg.frame_timeout_ms;
	bool handshaking = s->tls && net__tls_handshaking(s);

	if (!limit || s->state != NET__S_CONNECTED)
		return;
	if ((s->rbuf_len == 0 && !handshaking) || s->recv_paused) {
		s->partial_since_ms = 0;
	} else if (!s->partial_since_ms) {
		/* 0 means none: a clock that wraps to 0 stamps 1 ms late. */
		s->partial_since_ms = (uint32_t)s->loop->now_ms ? (uint32_t)s->loop->now_ms : 1;
		arm_by(s, s->loop->now_ms + limit);
	}
}

void net__session_deadline(struct net_session *s)
{
	switch (s->state) {
	case NET__S_CONNECTING:
		cancel_op(s, s->wop);
		s->error = -ETIMEDOUT;
		break;
	case NET__S_CONNECTED:
		check_deadlines(s);
		break;
	case NET__S_CLOSING:
		abort_close(s); /* flush (or EOF) deadline passed */
		break;
	default:
		break;
	}
}

/* ---- sending --------------------------------------------------------------- */

/*
 * Chunks count their bytes in 32 bits: one send, header included, must fit
 * in a chunk. Checked before anything is copied, on every path.
 */
static bool send_too_long(size_t len, bool framed)
{
	return len > NET__CHUNK_MAX - (framed ? NET_VARINT_MAX : 0);
}

/* Check the cap for `len` more bytes; applies the service's policy. */
static int admit(struct net_session *s, size_t len)
{
	const struct net_session_config *cfg = &s->service->cfg;

	if (s->state != NET__S_CONNECTED)
		return -ENOTCONN;
	if (s->sq_bytes + len <= cfg->send_queue_max)
		return 0;
	if (cfg->backpressure == NET_BACKPRESSURE_DISCONNECT)
		net_session_disconnect(s, NET_REASON_SEND_OVERFLOW);
	return -ENOBUFS;
}

/* After bytes were queued: schedule the send, apply PAUSE. */
static void queued(struct net_session *s)
{
	const struct net_session_config *cfg = &s->service->cfg;

	if (!s->wop)
		send_later(s);
	if (cfg->backpressure == NET_BACKPRESSURE_PAUSE && !s->recv_paused &&
	    s->sq_bytes > cfg->send_queue_max / 2) {
		s->recv_paused = true;
		NET__COUNT(s->loop, recv_paused, 1);
		/* A multishot receive would keep delivering: end it. Bytes
		 * that still arrive are held in rbuf until the pause ends. */
		cancel_op(s, &s->recv_op);
	}
}

/* Every send but net_session_reserve_frame's ends here, on the loop
 * thread: the one place a session's sealer sees its frames, in queue order.
 * The seal writes straight into the send queue (it is the copy). */
static int send_on_loop(struct net_session *s, const void *data, size_t len, bool framed)
{
	const struct net_frame_sealer *sealer = framed ? s->sealer : NULL;
	size_t body_len = sealer ? len + sealer->overhead : len;
	uint8_t hdr[10];
	size_t hdr_len = framed ? net_varint_encode(body_len, hdr) : 0;
	uint8_t *dst;
	int err;

	if (!framed && s->sealer)
		return -EPERM; /* raw bytes would bypass the seal */
	if (send_too_long(body_len, framed))
		return -EMSGSIZE;
	err = admit(s, hdr_len + body_len);
	if (err)
		return err;
	dst = net__sq_reserve(s, hdr_len + body_len);
	if (!dst)
		return -ENOMEM;
	memcpy(dst, hdr, hdr_len);
	if (sealer)
		sealer->seal(s, dst + hdr_len, data, len);
	else
		memcpy(dst + hdr_len, data, len);
	if (framed)
		NET__COUNT(s->loop, frames_out, 1);
	queued(s);
	return 0;
}

void *net_session_reserve_frame(struct net_session *s, size_t body_len, int *err)
{
	uint8_t hdr[10];
	size_t hdr_len = net_varint_encode(body_len, hdr);
	uint8_t *dst;

	*err = send_too_long(body_len, true) ? -EMSGSIZE : admit(s, hdr_len + body_len);
	if (*err)
		return NULL;
	dst = net__sq_reserve(s, hdr_len + body_len);
	if (!dst) {
		*err = -ENOMEM;
		return NULL;
	}
	memcpy(dst, hdr, hdr_len);
	NET__COUNT(s->loop, frames_out, 1);
	queued(s);
	return dst + hdr_len;
}

/*
 * A frame that another thread handed over (or that net_send_to was given)
 * and that cannot be queued for its live session (PAUSE cap, memory, the
 * loop's post queue full) would leave a gap in the stream that nobody sees:
 * the session is disconnected instead (NET_REASON_SEND_OVERFLOW), so its
 * owner learns through on_disconnected and rebuilds the link. A closing
 * session needs nothing more: on_disconnected is coming.
 */
static void handover_failed(struct net_session *s, int err)
{
	NET__COUNT(s->loop, sends_dropped, 1);
	if (err != -ENOTCONN)
		net_session_disconnect(s, NET_REASON_SEND_OVERFLOW);
}

/* A send posted from another thread: it carries its own copy. */
struct posted_send {
	struct net__task task;
	net_session_id id;
	bool framed;
	size_t len;
	uint8_t data[];
};

static void run_posted_send(struct net_loop *loop, void *arg)
{
	struct posted_send *ps = arg;
	struct net_session *s = net__session_lookup(loop, ps->id);
	int err;

	if (!s) {
		NET__COUNT(loop, sends_dropped, 1); /* gone: its owner knows */
	} else if ((err = send_on_loop(s, ps->data, ps->len, ps->framed)) != 0) {
		handover_failed(s, err);
	}
	free(ps);
}

static int post_send(struct net_loop *loop, net_session_id id, const void *data, size_t len,
		     bool framed)
{
	struct posted_send *ps;
	int err;

	if (send_too_long(len, framed))
		return -EMSGSIZE;
	ps = malloc(sizeof(*ps) + len);
	if (!ps) {
		err = -ENOMEM;
		goto out_disconnect;
	}
	ps->task.fn = run_posted_send;
	ps->task.arg = ps;
	ps->id = id;
	ps->framed = framed;
	ps->len = len;
	memcpy(ps->data, data, len);
	err = net__loop_post_task(loop, &ps->task, sizeof(*ps) + len, true);
	if (!err)
		return 0;
	free(ps);
	if (err == -NET_ESHUTDOWN)
		return err;
out_disconnect:
	/* Not queued: end the session rather than leave a gap in its stream
	 * (a disconnect is a control post, never refused by the bound). */
	(void)net_disconnect_id(loop->rt, id, NET_REASON_SEND_OVERFLOW);
	return err;
}

int net_session_send(struct net_session *s, const void *data, size_t len)
{
	if (!net__on_loop(s->loop))
		return post_send(s->loop, net_session_get_id(s), data, len, false);
	return send_on_loop(s, data, len, false);
}

int net_session_send_frame(struct net_session *s, const void *body, size_t len)
{
	if (!net__on_loop(s->loop))
		return post_send(s->loop, net_session_get_id(s), body, len, true);
	return send_on_loop(s, body, len, true);
}

struct net_loop *net_session_id_loop(struct net_runtime *rt, net_session_id id)
{
	unsigned index = (unsigned)(id >> 24) & 0xff;

	return id && index < rt->loop_count ? &rt->loops[index] : NULL;
}

int net_send_to(struct net_runtime *rt, net_session_id id, const void *body, size_t len)
{
	struct net_loop *loop = net_session_id_loop(rt, id);
	struct net_session *s;
	int err;

	if (!loop)
		return -EINVAL;
	if (send_too_long(len, true))
		return -EMSGSIZE;
	if (!net__on_loop(loop))
		return post_send(loop, id, body, len, true);
	s = net__session_lookup(loop, id);
	if (!s) {
		NET__COUNT(loop, sends_dropped, 1);
		return 0;
	}
	err = send_on_loop(s, body, len, true);
	if (err)
		handover_failed(s, err);
	return err;
}

/* ---- shared buffers ---------------------------------------------------------- */

static int send_buf_on_loop(struct net_session *s, struct net_buf *b)
{
	int err;

	if (s->sealer)
		return -EPERM; /* a shared frame is never sealed */
	err = admit(s, b->len);
	if (err)
		return err;
	err = net__sq_append_ref(s, b, b->off, b->len);
	if (err)
		return err;
	NET__COUNT(s->loop, frames_out, 1);
	queued(s);
	return 0;
}

int net_session_send_buf(struct net_session *s, struct net_buf *b)
{
	return send_buf_on_loop(s, b);
}

int net_session_send_buf_suffixed(struct net_session *s, struct net_buf *b, const void *suffix,
				  size_t suffix_len)
{
	size_t body_len;
	const uint8_t *body = net_buf_body(b, &body_len);
	uint8_t hdr[10];
	size_t hdr_len = net_varint_encode((uint64_t)body_len + suffix_len, hdr);
	uint8_t *dst;
	int err;

	if (suffix_len == 0)
		return send_buf_on_loop(s, b);
	if (s->sealer)
		return -EPERM;
	if (send_too_long(body_len + suffix_len, true))
		return -EMSGSIZE;
	err = admit(s, hdr_len + body_len + suffix_len);
	if (err)
		return err;
	dst = net__sq_reserve(s, hdr_len);
	if (!dst)
		return -ENOMEM;
	memcpy(dst, hdr, hdr_len);
	/* The length prefix is queued: a failure from here on would leave a
	 * torn frame, so it ends the session instead. */
	err = net__sq_append_ref(s, b, (uint32_t)(body - b->data), (uint32_t)body_len);
	if (!err) {
		dst = net__sq_reserve(s, suffix_len);
		err = dst ? 0 : -ENOMEM;
	}
	if (err) {
		net__session_fail(s, NET_REASON_IO_ERROR, err);
		return err;
	}
	memcpy(dst, suffix, suffix_len);
	NET__COUNT(s->loop, frames_out, 1);
	queued(s);
	return 0;
}

/* Queue b for one session named by id, on its loop; a frame that cannot
 * be queued for a live session disconnects it (net_send_to's rule). */
static void send_buf_to(struct net_loop *loop, net_session_id id, struct net_buf *b)
{
	struct net_session *s = net__session_lookup(loop, id);
	int err;

	if (!s) {
		NET__COUNT(loop, sends_dropped, 1);
		return;
	}
	err = send_buf_on_loop(s, b);
	if (err)
		handover_failed(s, err);
}

/* One loop's share of a net_send_buf_many from another thread. */
struct posted_many {
	struct net__task task;
	struct net_buf *buf;           /* one reference                       */
	size_t count;
	net_session_id ids[];
};

static void run_posted_many(struct net_loop *loop, void *arg)
{
	struct posted_many *pm = arg;

	for (size_t i = 0; i < pm->count; i++)
		send_buf_to(loop, pm->ids[i], pm->buf);
	net_buf_unref(pm->buf);
	free(pm);
}

/* Post ids[0..n) (all of `loop`) with a reference to b. If that fails the
 * sessions are disconnected: no silent gap in their streams. */
static int post_many(struct net_loop *loop, const net_session_id *ids, size_t n,
		     struct net_buf *b)
{
	size_t bytes = sizeof(struct posted_many) + n * sizeof(net_session_id);
	struct posted_many *pm = malloc(bytes);
	int err = -ENOMEM;

	if (pm) {
		pm->task.fn = run_posted_many;
		pm->task.arg = pm;
		pm->buf = b;
		pm->count = n;
		memcpy(pm->ids, ids, n * sizeof(*ids));
		net_buf_ref(b);
		/* Counted against the bound as what it costs: the ids and,
		 * once per loop, the frame. */
		err = net__loop_post_task(loop, &pm->task, bytes + b->len, true);
		if (!err)
			return 0;
		net_buf_unref(b);
		free(pm);
		if (err == -NET_ESHUTDOWN)
			return err;
	}
	for (size_t i = 0; i < n; i++)
		(void)net_disconnect_id(loop->rt, ids[i], NET_REASON_SEND_OVERFLOW);
	return err;
}

int net_send_buf_many(struct net_runtime *rt, const net_session_id *ids, size_t n,
		      struct net_buf *b)
{
	net_session_id *sorted;
	size_t *counts, first = 0;
	int err = 0;

	for (size_t i = 0; i < n; i++)
		if (!net_session_id_loop(rt, ids[i]))
			return -EINVAL;
	counts = calloc(rt->loop_count + 1, sizeof(*counts));
	sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (!counts || !sorted) {
		free(counts);
		free(sorted);
		return -ENOMEM;
	}
	/* Group by loop (a counting sort, stable: each session's frames keep
	 * the caller's order), then one post per loop, or direct sends on
	 * the caller's own loop. */
	for (size_t i = 0; i < n; i++)
		counts[net_session_id_loop(rt, ids[i])->index + 1]++;
	for (unsigned l = 0; l < rt->loop_count; l++)
		counts[l + 1] += counts[l];
	for (size_t i = 0; i < n; i++)
		sorted[counts[net_session_id_loop(rt, ids[i])->index]++] = ids[i];
	for (unsigned l = 0; l < rt->loop_count; l++) {
		struct net_loop *loop = &rt->loops[l];
		size_t end = counts[l], count = end - first;
		int rc = 0;

		if (count == 0)
			continue;
		if (net__on_loop(loop)) {
			for (size_t i = first; i < end; i++)
				send_buf_to(loop, sorted[i], b);
		} else {
			rc = post_many(loop, sorted + first, count, b);
		}
		if (rc && !err)
			err = rc;
		first = end;
	}
	free(sorted);
	free(counts);
	return err;
}

struct posted_disconnect {
	struct net__task task;
	net_session_id id;
	enum net_reason reason;
};

static void run_posted_disconnect(struct net_loop *loop, void *arg)
{
	struct posted_disconnect *pd = arg;
	struct net_session *s = net__session_lookup(loop, pd->id);

	if (s)
		net_session_disconnect(s, pd->reason);
	free(pd);
}

int net_disconnect_id(struct net_runtime *rt, net_session_id id, enum net_reason reason)
{
	struct net_loop *loop = net_session_id_loop(rt, id);
	struct posted_disconnect *pd;
	int err;

	if (!loop)
		return -EINVAL;
	pd = malloc(sizeof(*pd));
	if (!pd)
		return -ENOMEM;
	pd->task.fn = run_posted_disconnect;
	pd->task.arg = pd;
	pd->id = id;
	pd->reason = reason;
	/* Posted even on the loop thread: the caller may be inside one of
	 * the session's own callbacks. */
	err = net__loop_post_task(loop, &pd->task, sizeof(*pd), false);
	if (err)
		free(pd);
	return err;
}

static void submit_send(struct net_session *s)
{
	struct net__send_block *b;
	const uint8_t *records = NULL;
	size_t records_len = 0;
	struct net__op *op;
	int err;

	if (s->wop || !send_pending(s) ||
	    (s->state != NET__S_CONNECTED && s->state != NET__S_CLOSING) || s->shutdown_started ||
	    s->aborting)
		return;
	if (s->tls) {
		/* TLS: the engine sends records, made here from the plaintext. */
		records_len = net__tls_next_send(s, &records);
		if (records_len == 0) {
			if (s->state == NET__S_CLOSING && !send_pending(s))
				shut_write(s);
			return;
		}
	}
	b = net__send_block_get(s->loop);
	if (!b) {
		net__session_fail(s, NET_REASON_IO_ERROR, -ENOMEM);
		return;
	}
	op = &b->op;
	op->type = NET__OP_SEND;
	op->iov = b->iov;
	if (s->tls) {
		op->iov[0] = (struct iovec){ .iov_base = (void *)records, .iov_len = records_len };
		op->iov_count = 1;
	} else {
		op->iov_count = net__sq_gather(s, op->iov, NET__SEND_IOV_MAX);
	}
	err = post_op(s, op);
	if (err) {
		net__send_block_put(s->loop, op);
		net__session_fail(s, NET_REASON_IO_ERROR, err);
		return;
	}
	s->wop = op;
}

static void send_done(struct net_session *s, int32_t res)
{
	const struct net_session_config *cfg = &s->service->cfg;
	size_t sent = res > 0 ? (size_t)res : 0;

	if (res < 0) {
		if (res != -ECANCELED)
			net__session_fail(s, NET_REASON_IO_ERROR, res);
		return;
	}
	NET__COUNT(s->loop, bytes_out, sent);
	if (s->tls)
		net__tls_sent(s, sent);
	else
		net__sq_consume(s, sent);
	if (cfg->ops->on_sent && s->state == NET__S_CONNECTED)
		cfg->ops->on_sent(s, (size_t)res);
	if (s->recv_paused && s->state == NET__S_CONNECTED && s->sq_bytes < cfg->send_queue_max / 4)
		resume_recv(s);
	if (send_pending(s))
		send_later(s);
	else if (s->state == NET__S_CLOSING)
		shut_write(s); /* flushed */
}

/* ---- receiving -------------------------------------------------------------- */

/* PAUSE lifted: first the input held back, then receive again. */
static void resume_recv(struct net_session *s)
{
	s->recv_paused = false;
	net__recv_drain(s);
	track_partial_frame(s);
	post_recv(s);
}

/*
 * A receive completion. Engines may keep one RECV posted for many
 * completions (io_uring multishot: flagged MORE); without MORE the op has
 * ended and post_recv() arms the next one unless the session is paused or
 * closing.
 */
static void recv_done(struct net_session *s, const struct net__cqe *cqe)
{
	/* Closing: bytes are read only to be discarded. */
	if (cqe->res > 0 && s->state == NET__S_CONNECTED) {
		if (s->tls) {
			net__tls_recv(s, cqe->data, (size_t)cqe->res);
			if (send_pending(s))
				send_later(s); /* handshake replies, alerts */
		} else {
			net__recv_data(s, cqe->data, (size_t)cqe->res);
		}
		track_partial_frame(s);
	}
	if (cqe->has_buf)
		net__engine_recv_release(s->loop, cqe->buf_id);
	if (cqe->res == 0) {
		s->peer_eof = true;
		net_session_disconnect(s, s->tls ? net__tls_eof_reason(s) : NET_REASON_PEER_CLOSED);
	} else if (cqe->res == -ENOBUFS) {
		/* The provided-buffer ring ran dry: not end-of-stream. Buffers
		 * come back during this turn; re-post at its end. */
		s->recv_starved = true;
		return;
	} else if (cqe->res < 0 && cqe->res != -ECANCELED) {
		net__session_fail(s, NET_REASON_IO_ERROR, cqe->res);
	}
	post_recv(s);
}

/* ---- completions ------------------------------------------------------------ */

static void connect_done(struct net_session *s, int32_t res)
{
	if (res == 0 && s->reason == NET_REASON_NONE) {
		/* The dial won a race with its own timeout (the cancel came too
		 * late): connected, and the timeout's error does not stay. */
		s->error = 0;
		net__tnode_stop(s->loop, &s->deadline);
		NET__COUNT(s->loop, connected, 1);
		net__client_session_connected(s);
		become_connected(s);
		return;
	}
	/* Failed or timed out: close it as a session that never connected. */
	if (!s->error)
		s->error = res < 0 ? res : -ECONNABORTED;
	NET__COUNT(s->loop, connect_failed, 1);
	s->state = NET__S_CLOSING;
	abort_close(s);
}

static void session_complete(struct net_session *s, struct net__op *op,
			     const struct net__cqe *cqe)
{
	enum net__op_type type = op->type;

	/* A multishot op stays in flight until its last completion. */
	if (!(cqe->flags & NET__CQE_MORE)) {
		op->in_flight = false;
		s->ops_in_flight--;
	}
	if (op == s->wop) {
		/* The write side's op is done: give it back before the
		 * handlers, which may start the next one. */
		s->wop = NULL;
		if (type == NET__OP_SEND)
			net__send_block_put(s->loop, op);
		else
			free(op);
	}
	switch (type) {
	case NET__OP_RECV:
		recv_done(s, cqe);
		break;
	case NET__OP_SEND:
		send_done(s, cqe->res);
		break;
	case NET__OP_CONNECT:
		connect_done(s, cqe->res);
		break;
	case NET__OP_SHUTDOWN:
	case NET__OP_ACCEPT:
		break;
	}
	if (s->state != NET__S_CONNECTED || s->recv_starved)
		check_later(s);
}

void net__complete(struct net_loop *loop, struct net__op *op, const struct net__cqe *cqe)
{
	(void)loop;
	if (op->type == NET__OP_ACCEPT)
		net__listener_complete(op->owner, cqe);
	else
		session_complete(op->owner, op, cqe);
}

/* ---- end of turn ---------------------------------------------------------- */

void net__loop_flush(struct net_loop *loop)
{
	while (loop->send_list || loop->check_list) {
		while (loop->send_list) {
			struct net_session *s = loop->send_list;

			loop->send_list = s->send_next;
			s->on_send_list = false;
			submit_send(s);
		}
		while (loop->check_list) {
			struct net_session *s = loop->check_list;

			loop->check_list = s->check_next;
			s->on_check_list = false;
			check(s);
		}
	}
}

void net__loop_free_sessions(struct net_loop *loop)
{
	for (uint32_t i = 0; i < loop->slot_count; i++) {
		net__rbuf_free(net__slot(loop, i));
		net__sq_free(net__slot(loop, i));
		net__tls_close(net__slot(loop, i));
	}
	net__pages_free(&loop->slots);
	while (loop->slabs) {
		struct net__slab *slab = loop->slabs;

		loop->slabs = slab->next;
		free(slab);
	}
	net__sq_loop_free(loop);
}
