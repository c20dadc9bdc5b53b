/*
 * The epoll engine: completions made from readiness.
 *
 * Each socket is registered once, edge-triggered, for IN|OUT|RDHUP; the
 * handle caches "readable"/"writable" and the op waiting on each side. An
 * op is performed when its side is known ready (optimistically at submit
 * time, else when the edge arrives), and its completion is dispatched from
 * run(), never from submit(): the same contract as io_uring. One shared
 * receive buffer per loop serves every recv (the core copies only the
 * unconsumed tail), so idle connections hold no buffer.
 *
 * Handles to try live on a doubly linked ready list; detach unlinks in O(1)
 * so a session can be reused while its old handle was queued.
 *
 * Work already known when run() is called (the sends a loop turn queued,
 * completions decided outside run()) is done at once, and run() returns
 * without asking the kernel for events: the loop comes round, flushes what
 * those completions caused, and the next run() waits. So a ping-pong costs
 * epoll_wait, recv and sendmsg, not a zero-timeout epoll_wait besides. The
 * call after such a shortcut always waits (with a zero timeout if work is
 * still there), so sockets that stay ready cannot keep new edges unread.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EPOLL_BATCH 256
#define ACCEPTS_PER_TURN 64
#define SCRATCH_SIZE 65536

struct epoll_state {
	int epfd;
	int wakefd;
	struct net__handle *ready;          /* handles with work to try   */
	struct net__op *done_head, *done_tail;
	bool waited;                        /* the last run() called epoll_wait */
	struct epoll_event events[EPOLL_BATCH];
	uint8_t scratch[SCRATCH_SIZE];      /* every recv reads into it   */
};

/* This engine's part of a handle (engine.h). */
#define EP(h) (&(h)->priv.epoll)

static int epoll_probe(void)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int epoll_init(struct net_loop *loop)
{
	struct epoll_state *st = calloc(1, sizeof(*st));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int err;

	if (!st)
		return -ENOMEM;
	st->waited = true;
	st->epfd = epoll_create1(EPOLL_CLOEXEC);
	st->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (st->epfd < 0 || st->wakefd < 0 ||
	    epoll_ctl(st->epfd, EPOLL_CTL_ADD, st->wakefd, &ev) < 0) {
		err = -errno;
		if (st->epfd >= 0)
			close(st->epfd);
		if (st->wakefd >= 0)
			close(st->wakefd);
		free(st);
		return err;
	}
	loop->engine_state = st;
	return 0;
}

static void epoll_fini(struct net_loop *loop)
{
	struct epoll_state *st = loop->engine_state;

	close(st->epfd);
	close(st->wakefd);
	free(st);
	loop->engine_state = NULL;
}

static void ready_add(struct epoll_state *st, struct net__handle *h)
{
	if (EP(h)->in_ready_list)
		return;
	EP(h)->in_ready_list = true;
	EP(h)->ready_prev = NULL;
	EP(h)->ready_next = st->ready;
	if (st->ready)
		EP(st->ready)->ready_prev = h;
	st->ready = h;
}

static void ready_remove(struct epoll_state *st, struct net__handle *h)
{
	if (!EP(h)->in_ready_list)
		return;
	if (EP(h)->ready_prev)
		EP(EP(h)->ready_prev)->ready_next = EP(h)->ready_next;
	else
		st->ready = EP(h)->ready_next;
	if (EP(h)->ready_next)
		EP(EP(h)->ready_next)->ready_prev = EP(h)->ready_prev;
	EP(h)->in_ready_list = false;
}

static void done_later(struct epoll_state *st, struct net__op *op, int32_t res)
{
	op->priv.epoll.done_res = res;
	op->priv.epoll.done_next = NULL;
	if (st->done_tail)
		st->done_tail->priv.epoll.done_next = op;
	else
		st->done_head = op;
	st->done_tail = op;
}

static int epoll_attach(struct net_loop *loop, struct net__handle *h)
{
	struct epoll_state *st = loop->engine_state;
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.ptr = h,
	};

	/* Optimistic: the first recv/send just tries; EAGAIN corrects it. */
	EP(h)->readable = EP(h)->writable = true;
	EP(h)->hup = false;
	EP(h)->read_op = EP(h)->write_op = NULL;
	if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, (int)h->sock, &ev) < 0)
		return -errno;
	return 0;
}

static void epoll_detach(struct net_loop *loop, struct net__handle *h)
{
	struct epoll_state *st = loop->engine_state;

	ready_remove(st, h);
	epoll_ctl(st->epfd, EPOLL_CTL_DEL, (int)h->sock, NULL);
}

static int epoll_submit(struct net_loop *loop, struct net__op *op)
{
	struct epoll_state *st = loop->engine_state;
	struct net__handle *h = op->handle;
	int fd = (int)h->sock;

	switch (op->type) {
	case NET__OP_ACCEPT:
	case NET__OP_RECV:
		EP(h)->read_op = op;
		if (EP(h)->readable)
			ready_add(st, h);
		return 0;
	case NET__OP_SEND:
		EP(h)->write_op = op;
		if (EP(h)->writable)
			ready_add(st, h);
		return 0;
	case NET__OP_CONNECT:
		if (connect(fd, (const struct sockaddr *)op->addr, op->addr_len) == 0) {
			done_later(st, op, 0);
		} else if (errno == EINPROGRESS) {
			EP(h)->writable = false;
			EP(h)->write_op = op;
		} else {
			done_later(st, op, -errno);
		}
		return 0;
	case NET__OP_SHUTDOWN:
		done_later(st, op, shutdown(fd, SHUT_WR) == 0 ? 0 : -errno);
		return 0;
	}
	return -EINVAL;
}

static void epoll_cancel(struct net_loop *loop, struct net__op *op)
{
	struct epoll_state *st = loop->engine_state;
	struct net__handle *h = op->handle;

	if (EP(h)->read_op == op)
		EP(h)->read_op = NULL;
	else if (EP(h)->write_op == op)
		EP(h)->write_op = NULL;
	else
		return; /* already decided; its completion is queued */
	done_later(st, op, -ECANCELED);
}

static void complete_now(struct net_loop *loop, struct net__op *op, int32_t res,
			 const uint8_t *data, uint32_t flags)
{
	struct net__cqe cqe = { .res = res, .flags = flags, .data = data };

	net__complete(loop, op, &cqe);
}

static void try_read(struct net_loop *loop, struct net__handle *h)
{
	struct epoll_state *st = loop->engine_state;
	struct net__op *op = EP(h)->read_op;
	int fd = (int)h->sock;

	if (op->type == NET__OP_RECV) {
		ssize_t n = recv(fd, st->scratch, sizeof(st->scratch), 0);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			EP(h)->readable = false;
			return;
		}
		/* A short read drained the socket: skip the EAGAIN probe;
		 * the next edge sets readable again. Not after the peer's
		 * FIN: it came with the data and no edge will follow, so the
		 * next recv must run to read the end of the stream. */
		if (n > 0 && (size_t)n < sizeof(st->scratch) && !EP(h)->hup)
			EP(h)->readable = false;
		EP(h)->read_op = NULL;
		complete_now(loop, op, n < 0 ? -errno : (int32_t)n, st->scratch, 0);
		return;
	}
	for (int i = 0; i < ACCEPTS_PER_TURN && EP(h)->read_op == op; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd >= 0) {
			complete_now(loop, op, cfd, NULL, NET__CQE_MORE);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			EP(h)->readable = false;
			return;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		/* Like a multishot accept that fails: the op ends. */
		EP(h)->read_op = NULL;
		complete_now(loop, op, -errno, NULL, 0);
		return;
	}
}

static void try_write(struct net_loop *loop, struct net__handle *h)
{
	struct net__op *op = EP(h)->write_op;
	int fd = (int)h->sock;

	if (op->type == NET__OP_CONNECT) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		EP(h)->write_op = NULL;
		complete_now(loop, op, -soerr, NULL, 0);
		return;
	}

	struct msghdr msg = { .msg_iov = op->iov, .msg_iovlen = op->iov_count };
	size_t total = 0;
	ssize_t n;

	for (unsigned i = 0; i < op->iov_count; i++)
		total += op->iov[i].iov_len;
	n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		EP(h)->writable = false;
		return;
	}
	if (n >= 0 && (size_t)n < total)
		EP(h)->writable = false; /* the kernel buffer is full */
	EP(h)->write_op = NULL;
	complete_now(loop, op, n < 0 ? -errno : (int32_t)n, NULL, 0);
}

static void try_handle(struct net_loop *loop, struct net__handle *h)
{
	if (EP(h)->read_op && EP(h)->readable)
		try_read(loop, h);
	if (EP(h)->write_op && EP(h)->writable)
		try_write(loop, h);
}

/* Try a snapshot of the ready list: what completions re-add waits for the
 * next pass, so one busy socket cannot starve the rest. */
static void run_ready(struct net_loop *loop)
{
	struct epoll_state *st = loop->engine_state;
	struct net__handle *h = st->ready;

	st->ready = NULL;
	for (struct net__handle *p = h; p; p = EP(p)->ready_next)
		EP(p)->in_ready_list = false;
	while (h) {
		struct net__handle *next = EP(h)->ready_next;

		try_handle(loop, h);
		/* A still-ready accept (limit reached) gets another turn. */
		if (EP(h)->read_op && EP(h)->readable && EP(h)->read_op->type == NET__OP_ACCEPT)
			ready_add(st, h);
		h = next;
	}
}

static void run_done(struct net_loop *loop)
{
	struct epoll_state *st = loop->engine_state;

	while (st->done_head) {
		struct net__op *op = st->done_head;

		st->done_head = op->priv.epoll.done_next;
		if (!st->done_head)
			st->done_tail = NULL;
		complete_now(loop, op, op->priv.epoll.done_res, NULL, 0);
	}
}

static int epoll_run(struct net_loop *loop, int timeout_ms)
{
	struct epoll_state *st = loop->engine_state;
	int n;

	if ((st->ready || st->done_head) && st->waited) {
		/* Return before any wait: a completion dispatched here may
		 * queue core work (a send) that a blocking wait would strand. */
		st->waited = false;
		run_ready(loop);
		run_done(loop);
		return 0;
	}
	if (st->ready || st->done_head)
		timeout_ms = 0;
	st->waited = true;
	NET__COUNT(loop, waits, 1);
	n = epoll_wait(st->epfd, st->events, EPOLL_BATCH, timeout_ms);
	if (n < 0)
		n = 0; /* EINTR: the loop turn simply comes round again */
	loop->now_ms = net__now_ms();
	for (int i = 0; i < n; i++) {
		struct epoll_event *ev = &st->events[i];
		struct net__handle *h = ev->data.ptr;

		if (!h) {
			uint64_t v;

			while (read(st->wakefd, &v, sizeof(v)) > 0)
				;
			continue;
		}
		if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
			EP(h)->readable = true;
		if (ev->events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP))
			EP(h)->hup = true;
		if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			EP(h)->writable = true;
		if ((EP(h)->read_op && EP(h)->readable) || (EP(h)->write_op && EP(h)->writable))
			ready_add(st, h);
	}
	run_ready(loop);
	run_done(loop);
	return 0;
}

static void epoll_wake(struct net_loop *loop)
{
	struct epoll_state *st = loop->engine_state;
	uint64_t one = 1;

	/* Before init or after fini there is nothing to wake. */
	if (st)
		(void)!write(st->wakefd, &one, sizeof(one));
}

static void epoll_recv_release(struct net_loop *loop, uint32_t buf_id)
{
	(void)loop;
	(void)buf_id; /* the engine's scratch buffer is reused as is */
}

const struct net__engine net__engine_epoll = {
	.name = "epoll",
	.probe = epoll_probe,
	.init = epoll_init,
	.fini = epoll_fini,
	.attach = epoll_attach,
	.detach = epoll_detach,
	.submit = epoll_submit,
	.cancel = epoll_cancel,
	.run = epoll_run,
	.wake = epoll_wake,
	.recv_release = epoll_recv_release,
};
