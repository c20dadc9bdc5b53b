/*
 * libnet's engine contract: what the core (loop.c, session.c, server.c,
 * client.c, timer.c) asks of a completion engine (engine_uring.c,
 * engine_epoll.c, engine_iocp.c), and what each side may assume.
 *
 * The core speaks only in operations and completions. An engine takes a
 * posted operation and later reports exactly one final completion for it
 * through net__complete() (a multishot accept or receive reports many,
 * each flagged NET__CQE_MORE but the last). How it gets there (a
 * submission ring, readiness plus the syscall, an overlapped call) is its
 * own business. That is the seeds' IocpCore contract, and it is what IOCP
 * provides natively.
 *
 * Rules both sides keep:
 *   - Every hook runs on the loop's own thread, except wake().
 *   - A completion is never delivered from inside the call that caused it
 *     (submit, cancel, attach, detach): only from run(). So the core may
 *     change state after a call without a completion racing it.
 *   - An op, its handle and (for SEND) its iov stay valid and untouched by
 *     the core from an accepted submit until its final completion.
 *   - Each engine keeps its private per-socket and per-op state in its own
 *     member of the `priv` unions below (or, per socket, in a table of its
 *     own: epoll); the core never reads them, and an engine never reads
 *     another's. Whatever an engine allocates (rings,
 *     buffers, its loop state) it frees in fini().
 */
#ifndef NET_ENGINE_H
#define NET_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#include <errno.h>
#include <winsock2.h>
#include <ws2tcpip.h>
/* WSABUF's members are in the other order; the IOCP engine converts. */
struct iovec { void *iov_base; size_t iov_len; };
#else
#include <sys/socket.h>
#include <sys/uio.h>
#endif

/* A socket: an fd on Linux, a SOCKET on Windows. */
typedef uintptr_t net__sock_t;
#ifdef _WIN32
#define NET__SOCK_INVALID ((net__sock_t)INVALID_SOCKET)
#else
#define NET__SOCK_INVALID ((net__sock_t)-1)
#endif

/* Most buffers one gathered send covers (Linux IOV_MAX is 1024). */
#define NET__SEND_IOV_MAX 64

struct net_loop;
struct net__op;

/* ---- per-engine private state ---------------------------------------------- */

#ifndef _WIN32
/* epoll, per op: a completion decided outside run(), delivered by run(). */
struct net__epoll_op {
	struct net__op *done_next;
	int32_t done_res;
};

/* io_uring, per op: on one of the engine's backlogs (a submit or a cancel
 * waiting for a free SQE, or an op cancelled before it was submitted). */
struct net__uring_op {
	struct net__op *prev, *next;
	uint8_t backlog;
};

/* io_uring, per send: sendmsg reads the msghdr after submit. */
struct net__uring_send {
	struct msghdr msg;
};
#else
/* IOCP, per socket: where it came from and whether detach may keep it for
 * a later AcceptEx/ConnectEx (IOCP_H_* bits, engine_iocp.c). */
struct net__iocp_handle {
	unsigned flags;
};

/* IOCP, per op: the overlapped block of its I/O, the receive buffer a RECV
 * holds while in flight, and a result the engine decided itself. */
struct net__iocp_op {
	OVERLAPPED ov;
	uint32_t buf_id;
	int32_t done_res;
};
#endif

/* ---- operations ------------------------------------------------------------ */

enum net__op_type {
	NET__OP_ACCEPT,    /* multishot: each completion's res is a new socket */
	NET__OP_CONNECT,   /* res 0 or -errno                                 */
	NET__OP_RECV,      /* res bytes (0 = peer closed); data via the cqe;
			      an engine may keep it for many completions
			      (multishot, flagged MORE)                        */
	NET__OP_SEND,      /* gathered iov; res bytes sent (may be short)      */
	NET__OP_SHUTDOWN,  /* the write side only (the peer reads EOF after the
			      last queued byte); res 0 or -errno          */
};

/* A handle: one socket, and what an engine keeps for it where that engine
 * needs it beside the socket (epoll keeps its per-socket state in a table
 * of its own, so that io_uring's sessions do not carry it). */
struct net__handle {
	net__sock_t sock;
#ifdef _WIN32
	union {
		struct net__iocp_handle iocp;
	} priv;
#endif
};

/*
 * One outstanding operation (the seeds' IocpEvent). Embedded in the object
 * that owns it (a session's RECV), or lent to it while in flight (its
 * SEND in a send block, a CONNECT or SHUTDOWN allocated for the call);
 * `owner` gets the completion. in_flight is true from an accepted submit
 * until its final completion.
 */
struct net__op {
	enum net__op_type type;
	bool in_flight;
	bool cancel_requested;
	struct net__handle *handle;
	void *owner;
	union {
		struct {        /* SEND: iov points into a net__send_block */
			struct iovec *iov;
			unsigned iov_count;
		};
		struct {        /* CONNECT: the service's address, stable */
			const struct sockaddr_storage *addr;
			socklen_t addr_len;
		};
	};
	union {
#ifdef _WIN32
		struct net__iocp_op iocp;
#else
		struct net__epoll_op epoll;
		struct net__uring_op uring;
#endif
	} priv;
};

/*
 * The one SEND of a session in flight: its op and its gathered buffers.
 * Blocks come from a per-loop free list at submit and go back at
 * completion: an idle session holds none.
 */
struct net__send_block {
	struct net__send_block *next;   /* the loop's free list          */
	struct net__op op;
	struct iovec iov[NET__SEND_IOV_MAX];
#ifndef _WIN32
	union {
		struct net__uring_send uring;
	} priv;
#endif
};

/* A completion as the core sees it. */
struct net__cqe {
	int32_t res;
	uint32_t flags;               /* NET__CQE_MORE */
	const uint8_t *data;          /* RECV: res bytes, valid until release */
	uint32_t buf_id;              /* RECV: engine's token for recv_release */
	bool has_buf;
};
#define NET__CQE_MORE 1u

/* ---- the engine table -------------------------------------------------------- */

struct net__engine {
	const char *name;
	/* 0 if this engine works on this kernel/sandbox, else -errno. Any
	 * thread, before any loop exists; leaves nothing behind. */
	int (*probe)(void);
	/* Set up loop->engine_state (and publish it last: wake() reads it
	 * from other threads). Runs on the loop's own thread (io_uring's
	 * SINGLE_ISSUER ring belongs to the thread that creates it). On an
	 * error nothing is left allocated. */
	int (*init)(struct net_loop *loop);
	/* Free everything init() and later calls allocated, and clear
	 * loop->engine_state. No op is in flight any more. */
	void (*fini)(struct net_loop *loop);
	/* Associate a socket with the loop before any op on it; detach before
	 * close, with no op in flight. detach may keep the socket for reuse
	 * (iocp: after a DisconnectEx(TF_REUSE_SOCKET)); it then sets h->sock
	 * to NET__SOCK_INVALID, which net__sock_close ignores. */
	int (*attach)(struct net_loop *loop, struct net__handle *h);
	void (*detach)(struct net_loop *loop, struct net__handle *h);
	/* Post an op (at most one RECV or ACCEPT and one SEND or CONNECT per
	 * handle at a time). 0: exactly one final completion will follow,
	 * never from inside this call. <0: no completion, nothing kept. A
	 * full queue is the engine's to absorb, not a reason to fail. */
	int (*submit)(struct net_loop *loop, struct net__op *op);
	/* Ask an in-flight op to end soon; it completes with -ECANCELED (or
	 * its real result if it won the race). Never lost, never completes
	 * inside this call; harmless if the final completion is queued. */
	void (*cancel)(struct net_loop *loop, struct net__op *op);
	/* Flush submissions, wait up to timeout_ms (-1: forever, 0: not at
	 * all) for at least one event, set loop->now_ms after the wait, and
	 * dispatch completions via net__complete(). Never spins: on an error
	 * it still dispatches what is there, and backs off if nothing is. */
	int (*run)(struct net_loop *loop, int timeout_ms);
	/* Any thread: make a waiting run() return soon. A no-op before init
	 * and after fini (loop->engine_state is NULL then). */
	void (*wake)(struct net_loop *loop);
	/* Give a RECV buffer back once its bytes are consumed or copied
	 * (always within the completion's dispatch). */
	void (*recv_release)(struct net_loop *loop, uint32_t buf_id);
};

#ifdef _WIN32
extern const struct net__engine net__engine_iocp;
#else
extern const struct net__engine net__engine_uring;
extern const struct net__engine net__engine_epoll;
#endif

/* Called by engines for every completion, from run() only. */
void net__complete(struct net_loop *loop, struct net__op *op, const struct net__cqe *cqe);

#endif /* NET_ENGINE_H */
