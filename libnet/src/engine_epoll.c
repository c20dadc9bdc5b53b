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
 * What the engine keeps per socket lives in its own table indexed by fd
 * (struct ep_fd), not in the core's handle, so the other engines' sessions
 * do not carry it. Sockets to try live on a doubly linked ready list of
 * fds; detach unlinks in O(1) so a session can be reused while its old
 * socket was queued.
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

/* Per socket: cached edge-triggered readiness, the op waiting on each
 * side, and the link on the list of sockets to try. hup: the peer's FIN
 * (or an error) was seen, so no further edge comes. */
struct ep_fd {
	bool readable, writable, hup;
	bool in_ready_list;
	int ready_prev, ready_next;         /* fds; -1: none              */
	struct net__op *read_op, *write_op;
};

struct epoll_state {
	int epfd;
	int wakefd;
	int ready;                          /* first fd to try; -1: none  */
	struct ep_fd *fds;                  /* by fd, fd_cap of them      */
	size_t fd_cap;
	struct net__op *done_head, *done_tail;
	bool waited;                        /* the last run() called epoll_wait */
	struct epoll_event events[EPOLL_BATCH];
	uint8_t scratch[SCRATCH_SIZE];      /* every recv reads into it   */
};

/* This engine's state for socket fd (attached, so in the table). */
#define EP(st, fd) (&(st)->fds[fd])

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
	struct epoll_event ev = { .events = EPOLLIN };
	int err;

	if (!st)
		return -ENOMEM;
	st->waited = true;
	st->ready = -1;
	st->epfd = epoll_create1(EPOLL_CLOEXEC);
	st->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ev.data.fd = st->wakefd;
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
	free(st->fds);
	free(st);
	loop->engine_state = NULL;
}

static void ready_add(struct epoll_state *st, int fd)
{
	struct ep_fd *e = EP(st, fd);

	if (e->in_ready_list)
		return;
	e->in_ready_list = true;
	e->ready_prev = -1;
	e->ready_next = st->ready;
	if (st->ready >= 0)
		EP(st, st->ready)->ready_prev = fd;
	st->ready = fd;
}

static void ready_remove(struct epoll_state *st, int fd)
{
	struct ep_fd *e = EP(st, fd);

	if (!e->in_ready_list)
		return;
	if (e->ready_prev >= 0)
		EP(st, e->ready_prev)->ready_next = e->ready_next;
	else
		st->ready = e->ready_next;
	if (e->ready_next >= 0)
		EP(st, e->ready_next)->ready_prev = e->ready_prev;
	e->in_ready_list = false;
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
	int fd = (int)h->sock;
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.fd = fd,
	};

	if ((size_t)fd >= st->fd_cap) {
		size_t cap = st->fd_cap ? st->fd_cap : 64;
		struct ep_fd *fds;

		while (cap <= (size_t)fd)
			cap *= 2;
		fds = realloc(st->fds, cap * sizeof(*fds));
		if (!fds)
			return -ENOMEM;
		memset(fds + st->fd_cap, 0, (cap - st->fd_cap) * sizeof(*fds));
		st->fds = fds;
		st->fd_cap = cap;
	}
	/* Optimistic: the first recv/send just tries; EAGAIN corrects it. */
	*EP(st, fd) = (struct ep_fd){ .readable = true, .writable = true,
				      .ready_prev = -1, .ready_next = -1 };
	if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

static void epoll_detach(struct net_loop *loop, struct net__handle *h)
{
	struct epoll_state *st = loop->engine_state;

	ready_remove(st, (int)h->sock);
	epoll_ctl(st->epfd, EPOLL_CTL_DEL, (int)h->sock, NULL);
}

static int epoll_submit(struct net_loop *loop, struct net__op *op)
{
	struct epoll_state *st = loop->engine_state;
	int fd = (int)op->handle->sock;
	struct ep_fd *e = EP(st, fd);

	switch (op->type) {
	case NET__OP_ACCEPT:
	case NET__OP_RECV:
		e->read_op = op;
		if (e->readable)
			ready_add(st, fd);
		return 0;
	case NET__OP_SEND:
		e->write_op = op;
		if (e->writable)
			ready_add(st, fd);
		return 0;
	case NET__OP_CONNECT:
		if (connect(fd, (const struct sockaddr *)op->addr, op->addr_len) == 0) {
			done_later(st, op, 0);
		} else if (errno == EINPROGRESS) {
			e->writable = false;
			e->write_op = op;
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
	struct ep_fd *e = EP(st, (int)op->handle->sock);

	if (e->read_op == op)
		e->read_op = NULL;
	else if (e->write_op == op)
		e->write_op = NULL;
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

/* Completions may attach sockets (an accept) and so move the table: an
 * entry is looked up again after each one, never kept across it. */
static void try_read(struct net_loop *loop, int fd)
{
	struct epoll_state *st = loop->engine_state;
	struct net__op *op = EP(st, fd)->read_op;

	if (op->type == NET__OP_RECV) {
		ssize_t n = recv(fd, st->scratch, sizeof(st->scratch), 0);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			EP(st, fd)->readable = false;
			return;
		}
		/* A short read drained the socket: skip the EAGAIN probe;
		 * the next edge sets readable again. Not after the peer's
		 * FIN: it came with the data and no edge will follow, so the
		 * next recv must run to read the end of the stream. */
		if (n > 0 && (size_t)n < sizeof(st->scratch) && !EP(st, fd)->hup)
			EP(st, fd)->readable = false;
		EP(st, fd)->read_op = NULL;
		complete_now(loop, op, n < 0 ? -errno : (int32_t)n, st->scratch, 0);
		return;
	}
	for (int i = 0; i < ACCEPTS_PER_TURN && EP(st, fd)->read_op == op; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd >= 0) {
			complete_now(loop, op, cfd, NULL, NET__CQE_MORE);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			EP(st, fd)->readable = false;
			return;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		/* Like a multishot accept that fails: the op ends. */
		EP(st, fd)->read_op = NULL;
		complete_now(loop, op, -errno, NULL, 0);
		return;
	}
}

static void try_write(struct net_loop *loop, int fd)
{
	struct epoll_state *st = loop->engine_state;
	struct net__op *op = EP(st, fd)->write_op;

	if (op->type == NET__OP_CONNECT) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		EP(st, fd)->write_op = NULL;
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
		EP(st, fd)->writable = false;
		return;
	}
	if (n >= 0 && (size_t)n < total)
		EP(st, fd)->writable = false; /* the kernel buffer is full */
	EP(st, fd)->write_op = NULL;
	complete_now(loop, op, n < 0 ? -errno : (int32_t)n, NULL, 0);
}

static void try_fd(struct net_loop *loop, int fd)
{
	struct epoll_state *st = loop->engine_state;

	if (EP(st, fd)->read_op && EP(st, fd)->readable)
		try_read(loop, fd);
	if (EP(st, fd)->write_op && EP(st, fd)->writable)
		try_write(loop, fd);
}

/* Try a snapshot of the ready list: what completions re-add waits for the
 * next pass, so one busy socket cannot starve the rest. */
static void run_ready(struct net_loop *loop)
{
	struct epoll_state *st = loop->engine_state;
	int fd = st->ready;

	st->ready = -1;
	for (int p = fd; p >= 0; p = EP(st, p)->ready_next)
		EP(st, p)->in_ready_list = false;
	while (fd >= 0) {
		int next = EP(st, fd)->ready_next;
		struct ep_fd *e;

		try_fd(loop, fd);
		/* A still-ready accept (limit reached) gets another turn. */
		e = EP(st, fd);
		if (e->read_op && e->readable && e->read_op->type == NET__OP_ACCEPT)
			ready_add(st, fd);
		fd = next;
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

	if ((st->ready >= 0 || st->done_head) && st->waited) {
		/* Return before any wait: a completion dispatched here may
		 * queue core work (a send) that a blocking wait would strand. */
		st->waited = false;
		run_ready(loop);
		run_done(loop);
		return 0;
	}
	if (st->ready >= 0 || st->done_head)
		timeout_ms = 0;
	st->waited = true;
	NET__COUNT(loop, waits, 1);
	n = epoll_wait(st->epfd, st->events, EPOLL_BATCH, timeout_ms);
	if (n < 0)
		n = 0; /* EINTR: the loop turn simply comes round again */
	loop->now_ms = net__now_ms();
	for (int i = 0; i < n; i++) {
		struct epoll_event *ev = &st->events[i];
		int fd = ev->data.fd;
		struct ep_fd *e;

		if (fd == st->wakefd) {
			uint64_t v;

			while (read(st->wakefd, &v, sizeof(v)) > 0)
				;
			continue;
		}
		e = EP(st, fd);
		if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
			e->readable = true;
		if (ev->events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP))
			e->hup = true;
		if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			e->writable = true;
		if ((e->read_op && e->readable) || (e->write_op && e->writable))
			ready_add(st, fd);
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
