/*
 * The io_uring engine: the kernel's own completion queue.
 *
 * One ring per loop, created on the loop's thread with SINGLE_ISSUER and
 * DEFER_TASKRUN (measured here: default flags made io_uring slower than
 * epoll; these make it faster, since completions run only when the loop
 * asks for them). No SQPOLL (it burns one of two cores) and no zero-copy
 * send (break-even is ~3 KB; game packets are smaller). io-wq is capped.
 *
 * Receives use a provided-buffer ring: no session owns a receive buffer
 * while it waits, the kernel picks one when data arrives, and the core
 * hands it back (recv_release) as soon as the bytes are consumed or
 * copied. liburing 2.3 lacks io_uring_setup_buf_ring(), so the ring lives
 * on memory mapped here and is registered by hand.
 *
 * user_data is the op pointer; 0 marks a cancel request (its own CQE is
 * ignored: the cancelled op reports -ECANCELED itself); WAKE_TAG is the
 * eventfd read that lets other threads wake the loop.
 *
 * A full submission queue is submitted to the kernel to make room. If even
 * that fails (io_uring_enter refusing for lack of memory, or while
 * completions overflow), nothing is dropped: the op, or the cancel, waits
 * on a backlog (SUBMIT, CANCEL) that run() hands to the ring before it
 * waits; an op cancelled while still on the SUBMIT backlog never reaches
 * the kernel and completes with -ECANCELED from run() (DONE). The wake-up
 * read is re-armed the same way. So submit() and cancel() never fail for
 * want of an SQE, and the contract (one completion per accepted submit,
 * never from inside the call) holds.
 */
#include "internal.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Submission queue size; the completion queue is four times as big.
 * RINGGATE_URING_ENTRIES overrides it (a power of two, 1..4096): the tests
 * run with a tiny ring so that the full-queue paths execute. */
#define SQ_ENTRIES 4096
#define CQ_PER_SQ 4
#define BUF_GROUP 0
#define WAKE_TAG 1

/* The backlogs (net__op.priv.uring.backlog). */
enum { BL_NONE, BL_SUBMIT, BL_CANCEL, BL_DONE, BL_COUNT };

struct backlog {
	struct net__op *head, *tail;
};

/* Most to wait when io_uring_enter keeps failing, so run() never spins. */
#define ERROR_BACKOFF_MS 10

struct uring_state {
	struct io_uring ring;
	struct backlog backlog[BL_COUNT]; /* [BL_NONE] unused             */
	bool wake_armed;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	uint8_t *bufs;
	unsigned buf_count, buf_size;
	int wakefd;
	uint64_t wake_value;
	bool multishot_recv;          /* kernel 6.0+                         */
};

static const unsigned preferred_flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

static int ring_create(struct io_uring *ring, unsigned entries, unsigned cq_entries)
{
	struct io_uring_params p;
	int err;

	memset(&p, 0, sizeof(p));
	p.flags = preferred_flags | IORING_SETUP_CQSIZE;
	p.cq_entries = cq_entries;
	err = io_uring_queue_init_params(entries, ring, &p);
	if (err == -EINVAL) {
		/* Kernels before 6.1 lack the task-run flags. */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = cq_entries;
		err = io_uring_queue_init_params(entries, ring, &p);
	}
	return err;
}

static unsigned round_pow2(unsigned v)
{
	unsigned p = 1;

	while (p < v && p < 32768)
		p <<= 1;
	return p;
}

static int buf_ring_setup(struct uring_state *st, unsigned count, unsigned size)
{
	struct io_uring_buf_reg reg;
	long page = sysconf(_SC_PAGESIZE);
	int err;

	st->buf_count = round_pow2(count);
	st->buf_size = size;
	st->br_bytes = (st->buf_count * sizeof(struct io_uring_buf) + (size_t)page - 1) &
		       ~((size_t)page - 1);
	st->br = mmap(NULL, st->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (st->br == MAP_FAILED) {
		st->br = NULL;
		return -errno;
	}
	st->bufs = malloc((size_t)st->buf_count * size);
	if (!st->bufs) {
		err = -ENOMEM;
		goto out_unmap;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)st->br;
	reg.ring_entries = st->buf_count;
	reg.bgid = BUF_GROUP;
	err = io_uring_register_buf_ring(&st->ring, &reg, 0);
	if (err)
		goto out_free;
	io_uring_buf_ring_init(st->br);
	for (unsigned i = 0; i < st->buf_count; i++)
		io_uring_buf_ring_add(st->br, st->bufs + (size_t)i * size, size, (unsigned short)i,
				      io_uring_buf_ring_mask(st->buf_count), (int)i);
	io_uring_buf_ring_advance(st->br, (int)st->buf_count);
	return 0;

out_free:
	free(st->bufs);
	st->bufs = NULL;
out_unmap:
	munmap(st->br, st->br_bytes);
	st->br = NULL;
	return err;
}

static void buf_ring_teardown(struct uring_state *st)
{
	if (!st->br)
		return;
	io_uring_unregister_buf_ring(&st->ring, BUF_GROUP);
	munmap(st->br, st->br_bytes);
	free(st->bufs);
}

/*
 * Usable means: a ring can be made (seccomp and kernel.io_uring_disabled
 * say no with EPERM/ENOSYS) and provided-buffer rings work (5.19+, which
 * also brings multishot accept).
 */
static int uring_probe(void)
{
	struct uring_state st;
	int err;

	memset(&st, 0, sizeof(st));
	err = ring_create(&st.ring, 8, 16);
	if (err)
		return err;
	err = buf_ring_setup(&st, 1, 64);
	buf_ring_teardown(&st);
	io_uring_queue_exit(&st.ring);
	return err;
}

/* A free SQE, or NULL when the queue is full and the kernel would not
 * take what it holds. */
static struct io_uring_sqe *get_sqe(struct uring_state *st)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);

	if (!sqe) {
		/* SQ full: hand what we have to the kernel and go on. */
		io_uring_submit(&st->ring);
		sqe = io_uring_get_sqe(&st->ring);
	}
	return sqe;
}

static void backlog_push(struct uring_state *st, struct net__op *op, uint8_t which)
{
	struct backlog *bl = &st->backlog[which];

	op->priv.uring.backlog = which;
	op->priv.uring.next = NULL;
	op->priv.uring.prev = bl->tail;
	if (bl->tail)
		bl->tail->priv.uring.next = op;
	else
		bl->head = op;
	bl->tail = op;
}

static void backlog_remove(struct uring_state *st, struct net__op *op)
{
	struct backlog *bl = &st->backlog[op->priv.uring.backlog];

	if (op->priv.uring.prev)
		op->priv.uring.prev->priv.uring.next = op->priv.uring.next;
	else
		bl->head = op->priv.uring.next;
	if (op->priv.uring.next)
		op->priv.uring.next->priv.uring.prev = op->priv.uring.prev;
	else
		bl->tail = op->priv.uring.prev;
	op->priv.uring.backlog = BL_NONE;
}

/* Re-arm the wake-up read; if there is no SQE now, run() retries. */
static void arm_wake(struct uring_state *st)
{
	struct io_uring_sqe *sqe = get_sqe(st);

	st->wake_armed = sqe != NULL;
	if (!sqe)
		return;
	io_uring_prep_read(sqe, st->wakefd, &st->wake_value, sizeof(st->wake_value), 0);
	io_uring_sqe_set_data64(sqe, WAKE_TAG);
}

/* Multishot recv came in 6.0; no opcode probe reports flag support. */
static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma > major || (ma == major && mi >= minor);
}

/* The submission queue size: SQ_ENTRIES, or RINGGATE_URING_ENTRIES. */
static unsigned ring_entries(void)
{
	const char *env = getenv("RINGGATE_URING_ENTRIES");
	unsigned long n = env && *env ? strtoul(env, NULL, 10) : 0;

	return n >= 1 && n <= SQ_ENTRIES ? round_pow2((unsigned)n) : SQ_ENTRIES;
}

static int uring_init(struct net_loop *loop)
{
	const struct net_runtime_config *cfg = &loop->rt->cfg;
	struct uring_state *st = calloc(1, sizeof(*st));
	unsigned workers[2] = { 2, 2 }, entries = ring_entries();
	int err;

	if (!st)
		return -ENOMEM;
	err = ring_create(&st->ring, entries, entries * CQ_PER_SQ);
	if (err)
		goto out_free;
	/* Blocking fallbacks (rare for sockets) must not grow threads
	 * without bound on a 2-core box. */
	io_uring_register_iowq_max_workers(&st->ring, workers);
	st->multishot_recv = kernel_at_least(6, 0);
	err = buf_ring_setup(st, cfg->recv_buffers, cfg->recv_buffer_size);
	if (err)
		goto out_exit;
	st->wakefd = eventfd(0, EFD_CLOEXEC);
	if (st->wakefd < 0) {
		err = -errno;
		goto out_bufs;
	}
	arm_wake(st);
	if (!st->wake_armed) {
		err = -EBUSY;
		goto out_wakefd;
	}
	loop->engine_state = st;
	return 0;

out_wakefd:
	close(st->wakefd);
out_bufs:
	buf_ring_teardown(st);
out_exit:
	io_uring_queue_exit(&st->ring);
out_free:
	free(st);
	return err;
}

static void uring_fini(struct net_loop *loop)
{
	struct uring_state *st = loop->engine_state;

	loop->engine_state = NULL;
	buf_ring_teardown(st);
	io_uring_queue_exit(&st->ring);
	close(st->wakefd);
	free(st);
}

static int uring_attach(struct net_loop *loop, struct net__handle *h)
{
	(void)loop;
	(void)h; /* io_uring needs no registration per socket */
	return 0;
}

static void uring_detach(struct net_loop *loop, struct net__handle *h)
{
	(void)loop;
	(void)h;
}

/* Fill sqe for op. */
static void prep_op(struct uring_state *st, struct io_uring_sqe *sqe, struct net__op *op)
{
	int fd = (int)op->handle->sock;

	switch (op->type) {
	case NET__OP_ACCEPT:
		io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		break;
	case NET__OP_RECV:
		if (st->multishot_recv) {
			/* One SQE for the life of the connection: the kernel
			 * keeps its poll armed and posts a CQE per arrival. */
			io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
		} else {
			io_uring_prep_recv(sqe, fd, NULL, st->buf_size, 0);
			/* A game peer usually answers later, not now: skip
			 * the attempt that would only return EAGAIN. */
			sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
		}
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = BUF_GROUP;
		break;
	case NET__OP_SEND:
		if (op->iov_count == 1) {
			/* The common case: plain send skips importing a msghdr. */
			io_uring_prep_send(sqe, fd, op->iov[0].iov_base, op->iov[0].iov_len,
					   MSG_NOSIGNAL);
			break;
		}
		{
			struct net__send_block *b =
				NET__CONTAINER_OF(op->iov, struct net__send_block, iov);
			struct msghdr *msg = &b->priv.uring.msg;

			memset(msg, 0, sizeof(*msg));
			msg->msg_iov = op->iov;
			msg->msg_iovlen = op->iov_count;
			io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
		}
		break;
	case NET__OP_CONNECT:
		io_uring_prep_connect(sqe, fd, (const struct sockaddr *)op->addr, op->addr_len);
		break;
	case NET__OP_SHUTDOWN:
		io_uring_prep_shutdown(sqe, fd, SHUT_WR);
		break;
	}
	io_uring_sqe_set_data(sqe, op);
}

static void prep_cancel(struct io_uring_sqe *sqe, struct net__op *op)
{
	io_uring_prep_cancel(sqe, op, 0);
	io_uring_sqe_set_data64(sqe, 0);
}

static int uring_submit(struct net_loop *loop, struct net__op *op)
{
	struct uring_state *st = loop->engine_state;
	struct io_uring_sqe *sqe;

	op->priv.uring.backlog = BL_NONE;
	/* Behind a backlog: queue too, so ops keep their order. */
	sqe = st->backlog[BL_SUBMIT].head ? NULL : get_sqe(st);
	if (!sqe) {
		backlog_push(st, op, BL_SUBMIT);
		return 0;
	}
	prep_op(st, sqe, op);
	return 0;
}

static void uring_cancel(struct net_loop *loop, struct net__op *op)
{
	struct uring_state *st = loop->engine_state;
	struct io_uring_sqe *sqe;

	switch (op->priv.uring.backlog) {
	case BL_SUBMIT:
		/* The kernel never saw it: it ends here, from run(). */
		backlog_remove(st, op);
		backlog_push(st, op, BL_DONE);
		return;
	case BL_CANCEL:
	case BL_DONE:
		return;
	}
	sqe = st->backlog[BL_SUBMIT].head ? NULL : get_sqe(st);
	if (!sqe) {
		backlog_push(st, op, BL_CANCEL);
		return;
	}
	prep_cancel(sqe, op);
}

/* Hand the backlogs to the ring, oldest first and submits before cancels
 * (a cancel may be for an op on the SUBMIT backlog). False if some are
 * still waiting. */
static bool flush_backlogs(struct uring_state *st)
{
	static const uint8_t order[] = { BL_SUBMIT, BL_CANCEL };

	if (!st->wake_armed)
		arm_wake(st);
	for (size_t i = 0; i < sizeof(order); i++) {
		struct backlog *bl = &st->backlog[order[i]];

		while (bl->head) {
			struct net__op *op = bl->head;
			struct io_uring_sqe *sqe = get_sqe(st);

			if (!sqe)
				return false;
			backlog_remove(st, op);
			if (order[i] == BL_SUBMIT)
				prep_op(st, sqe, op);
			else
				prep_cancel(sqe, op);
		}
	}
	return st->wake_armed;
}

/* Ops cancelled before they were submitted end now, with -ECANCELED. */
static void complete_cancelled(struct net_loop *loop, struct uring_state *st)
{
	struct backlog *bl = &st->backlog[BL_DONE];

	while (bl->head) {
		struct net__op *op = bl->head;
		struct net__cqe c = { .res = -ECANCELED };

		backlog_remove(st, op);
		net__complete(loop, op, &c);
	}
}

static void dispatch(struct net_loop *loop, struct uring_state *st, struct io_uring_cqe *cqe)
{
	uint64_t tag = io_uring_cqe_get_data64(cqe);
	struct net__cqe c = { .res = cqe->res };

	if (tag == 0)
		return;
	if (tag == WAKE_TAG) {
		arm_wake(st);
		return;
	}
	if (cqe->flags & IORING_CQE_F_MORE) {
		c.flags |= NET__CQE_MORE;
	} else {
		struct net__op *op = io_uring_cqe_get_data(cqe);

		/* Its final completion: a cancel still waiting is moot. */
		if (op->priv.uring.backlog == BL_CANCEL)
			backlog_remove(st, op);
	}
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		c.has_buf = true;
		c.buf_id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		c.data = st->bufs + (size_t)c.buf_id * st->buf_size;
	}
	net__complete(loop, io_uring_cqe_get_data(cqe), &c);
}

static int uring_run(struct net_loop *loop, int timeout_ms)
{
	struct uring_state *st = loop->engine_state;
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	int err;

	/* Work still waiting for SQEs, or ops to end: do not sleep on it. */
	if (!flush_backlogs(st) || st->backlog[BL_DONE].head)
		timeout_ms = 0;
	NET__COUNT(loop, waits, 1);
	if (timeout_ms == 0) {
		err = io_uring_submit_and_get_events(&st->ring);
	} else if (timeout_ms < 0) {
		err = io_uring_submit_and_wait(&st->ring, 1);
	} else {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
		};

		err = io_uring_submit_and_wait_timeout(&st->ring, &cqe, 1, &ts, NULL);
	}
	loop->now_ms = net__now_ms();
	/* Whatever the error, dispatch what is there: -EBUSY, for one, means
	 * completions are waiting to be reaped. */
	io_uring_for_each_cqe(&st->ring, head, cqe) {
		dispatch(loop, st, cqe);
		seen++;
	}
	io_uring_cq_advance(&st->ring, seen);
	complete_cancelled(loop, st);
	if (err < 0 && err != -ETIME && err != -EINTR && !seen) {
		/* Nothing came of it (-ENOMEM, -EAGAIN ...): wait a little for
		 * a completion rather than spin, then the loop tries again. */
		struct pollfd pfd = { .fd = st->ring.ring_fd, .events = POLLIN };
		int ms = timeout_ms < 0 || timeout_ms > ERROR_BACKOFF_MS ? ERROR_BACKOFF_MS : timeout_ms;

		(void)poll(&pfd, 1, ms);
		loop->now_ms = net__now_ms();
		return err;
	}
	return 0;
}

static void uring_wake(struct net_loop *loop)
{
	struct uring_state *st = loop->engine_state;
	uint64_t one = 1;

	if (st)
		(void)!write(st->wakefd, &one, sizeof(one));
}

static void uring_recv_release(struct net_loop *loop, uint32_t buf_id)
{
	struct uring_state *st = loop->engine_state;

	io_uring_buf_ring_add(st->br, st->bufs + (size_t)buf_id * st->buf_size, st->buf_size,
			      (unsigned short)buf_id, io_uring_buf_ring_mask(st->buf_count), 0);
	io_uring_buf_ring_advance(st->br, 1);
}

const struct net__engine net__engine_uring = {
	.name = "uring",
	.probe = uring_probe,
	.init = uring_init,
	.fini = uring_fini,
	.attach = uring_attach,
	.detach = uring_detach,
	.submit = uring_submit,
	.cancel = uring_cancel,
	.run = uring_run,
	.wake = uring_wake,
	.recv_release = uring_recv_release,
};
