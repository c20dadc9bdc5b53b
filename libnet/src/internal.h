/*
 * libnet internals: the structures shared by the core and the engines.
 *
 * The core (loop.c, session.c, server.c, client.c, timer.c) speaks only in
 * operations and completions. An engine (engine_uring.c, engine_epoll.c)
 * takes a posted operation and later reports exactly one completion for it
 * through net__complete() (a multishot accept reports many, each flagged
 * NET__CQE_MORE but the last). How it gets there (a submission ring, or
 * readiness plus the syscall) is its own business. That is the seeds'
 * IocpCore contract, and it is what an IOCP engine provides natively.
 *
 * Threading: everything here is touched only by the loop's own thread,
 * except the fields marked "any thread".
 */
#ifndef NET_INTERNAL_H
#define NET_INTERNAL_H

#include "net/net.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#include <errno.h>
#include <winsock2.h>
#include <ws2tcpip.h>
/* WSABUF's members are in the other order; the IOCP engine converts. */
struct iovec { void *iov_base; size_t iov_len; };
/* The CRT's errno.h has no ESHUTDOWN; the winsock code is the nearest. */
#ifndef ESHUTDOWN
#define ESHUTDOWN WSAESHUTDOWN
#endif
#else
#include <sys/socket.h>
#include <sys/uio.h>
#endif

#define NET__CONTAINER_OF(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* Most buffers one gathered send covers (Linux IOV_MAX is 1024). */
#define NET__SEND_IOV_MAX 64

struct net__engine;
struct net__service;

/* ---- operations ---------------------------------------------------------- */

enum net__op_type {
	NET__OP_ACCEPT,    /* multishot: each completion's res is a new socket */
	NET__OP_CONNECT,   /* res 0 or -errno                                 */
	NET__OP_RECV,      /* res bytes (0 = peer closed); data via the cqe    */
	NET__OP_SEND,      /* gathered iov; res bytes sent (may be short)      */
	NET__OP_SHUTDOWN,  /* the write side only (the peer reads EOF after the
			      last queued byte); res 0 or -errno          */
};

/* A handle: one socket and what an engine keeps for it. */
struct net__handle {
	net_socket_t sock;
	/* epoll: cached edge-triggered readiness and the op waiting on it;
	 * hup: the peer's FIN (or an error) was seen, no further edge comes. */
	bool readable, writable, hup;
	struct net__op *read_op, *write_op;
	bool in_ready_list;
	struct net__handle *ready_prev, *ready_next;
#ifdef _WIN32
	/* iocp: where the socket came from and whether detach may keep it
	 * for a later AcceptEx/ConnectEx (IOCP_H_* bits, engine_iocp.c). */
	unsigned iocp_flags;
#endif
};

/*
 * The gathered buffers of one SEND. At most one send per session is in
 * flight, so blocks come from a per-loop free list at submit and go back
 * at completion: an idle session holds none.
 */
struct net__send_block {
	struct net__send_block *next;   /* the loop's free list          */
	struct iovec iov[NET__SEND_IOV_MAX];
#ifndef _WIN32
	struct msghdr msg;              /* uring: sendmsg needs it stable */
#endif
};

/*
 * One outstanding operation (the seeds' IocpEvent). Embedded in the object
 * that owns it; `owner` gets the completion. in_flight is true from an
 * accepted submit until its final completion. Kept small: a session
 * embeds three.
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
#ifdef _WIN32
	/* iocp: the overlapped block of this op's I/O, the receive buffer a
	 * RECV holds while in flight, and a result decided by the engine. */
	OVERLAPPED ov;
	uint32_t buf_id;
	int32_t done_res;
#else
	/* Engine-private: each engine touches only its own member. */
	union {
		struct {        /* a completion decided outside run() */
			struct net__op *done_next;
			int32_t done_res;
		} epoll;
		struct {        /* on one of the engine's backlogs (a submit or a
				   cancel waiting for a free SQE) */
			struct net__op *prev, *next;
			uint8_t backlog;
		} uring;
	} priv;
#endif
};

/* A peer address, compact (sessions keep it; text is made on demand). */
struct net__addr {
	uint8_t bytes[16];              /* IPv4: the first 4              */
	uint16_t port;
	uint8_t family;                 /* AF_INET, AF_INET6; 0 = unknown  */
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

/* ---- the engine table ---------------------------------------------------- */

struct net__engine {
	const char *name;
	/* 0 if this engine works on this kernel/sandbox, else -errno. */
	int (*probe)(void);
	/* Set up loop->engine_state. Runs on the loop's own thread (io_uring's
	 * SINGLE_ISSUER ring belongs to the thread that creates it). */
	int (*init)(struct net_loop *loop);
	void (*fini)(struct net_loop *loop);
	/* Associate a socket with the loop before any op on it; detach before
	 * close. detach may keep the socket for reuse (iocp: after a
	 * DisconnectEx(TF_REUSE_SOCKET)); it then sets h->sock to
	 * NET__SOCK_INVALID, which net__sock_close ignores. */
	int (*attach)(struct net_loop *loop, struct net__handle *h);
	void (*detach)(struct net_loop *loop, struct net__handle *h);
	/* Post an op. 0: exactly one final completion will follow, never from
	 * inside this call. <0: no completion. */
	int (*submit)(struct net_loop *loop, struct net__op *op);
	/* Ask an in-flight op to end soon; it completes with -ECANCELED (or
	 * its real result if it won the race). */
	void (*cancel)(struct net_loop *loop, struct net__op *op);
	/* Flush submissions, wait up to timeout_ms (-1: forever) for at least
	 * one event, and dispatch completions via net__complete(). */
	int (*run)(struct net_loop *loop, int timeout_ms);
	/* Any thread: make a waiting run() return soon. */
	void (*wake)(struct net_loop *loop);
	/* Give a RECV buffer back once its bytes are consumed or copied. */
	void (*recv_release)(struct net_loop *loop, uint32_t buf_id);
};

#ifdef _WIN32
extern const struct net__engine net__engine_iocp;
#define NET__SOCK_INVALID ((net_socket_t)INVALID_SOCKET)
#else
extern const struct net__engine net__engine_uring;
extern const struct net__engine net__engine_epoll;
#define NET__SOCK_INVALID ((net_socket_t)-1)
#endif

/* Called by engines for every completion. */
void net__complete(struct net_loop *loop, struct net__op *op, const struct net__cqe *cqe);

/* ---- timers -------------------------------------------------------------- */

struct net_timer {
	struct net_loop *loop;
	uint64_t due;
	uint64_t seq;                 /* arming order: breaks ties on due */
	uint64_t repeat;
	net_timer_fn fn;
	void *arg;
	size_t heap_index;            /* NET__TIMER_IDLE when not armed */
};
#define NET__TIMER_IDLE SIZE_MAX

int net__timer_init(struct net_timer *t, struct net_loop *loop, net_timer_fn fn, void *arg);
/* Milliseconds until the next timer is due (-1: none), for the engine wait. */
int net__timers_next_timeout(struct net_loop *loop);
void net__timers_run(struct net_loop *loop);

/* ---- posted tasks -------------------------------------------------------- */

struct net__task {
	struct net__task *next;
	net_task_fn fn;
	void *arg;
	size_t bytes;                 /* counted against post_queue_max    */
};

/* Wake a loop unless it has already stopped (any thread). */
void net__loop_wake(struct net_loop *loop);

/*
 * Queue an already allocated task of `bytes` bytes (fn must free it). A
 * bounded post (data: sends, the application's tasks) is refused with
 * -ENOBUFS when the loop's queue would pass post_queue_max; control posts
 * (disconnects, releases, accepted sockets, service start and stop) are
 * counted but never refused, since refusing them would lose the very
 * work that frees resources; each is bounded by what it is about.
 * -ESHUTDOWN once the loop has stopped. On an error the task stays the
 * caller's.
 */
int net__loop_post_task(struct net_loop *loop, struct net__task *task, size_t bytes,
			bool bounded);
/* net_loop_post for libnet's own control tasks: never refused by the bound. */
int net__loop_post_control(struct net_loop *loop, net_task_fn fn, void *arg);

/* ---- send queue ---------------------------------------------------------- */

/* A block of queued send bytes; blocks form a FIFO per session. */
struct net__chunk {
	struct net__chunk *next;
	uint32_t start;               /* first byte not yet sent             */
	uint32_t end;                 /* first free byte                     */
	uint32_t cap;
	uint8_t data[];
};
#define NET__CHUNK_SIZE (16384 - sizeof(struct net__chunk))
/* The most one chunk (so one send, header included) can hold. */
#define NET__CHUNK_MAX ((size_t)UINT32_MAX)

/* ---- sessions ------------------------------------------------------------ */

enum net__session_state {
	NET__S_FREE,                  /* in the pool                          */
	NET__S_CONNECTING,            /* dial in flight                       */
	NET__S_CONNECTED,
	NET__S_CLOSING,               /* flushing, then shutdown, then close  */
	NET__S_CLOSED,                /* closed; waiting for the last unref   */
};

struct net_session {
	struct net_loop *loop;
	struct net__service *service;
	net_session_id id;
	uint32_t slot;
	uint32_t generation;
	enum net__session_state state;
	enum net_reason reason;
	int error;
	atomic_int refs;              /* any thread                           */
	unsigned ops_in_flight;
	bool was_connected;           /* on_connected ran: on_disconnected owed */
	bool shutdown_started;        /* CLOSING: write side shut (flushed)   */
	bool peer_eof;                /* the peer's EOF (or a receive error)  */
	bool aborting;                /* CLOSING: deadline passed or I/O
					 error: cancel everything and close    */
	bool recv_paused;             /* PAUSE backpressure                   */
	bool recv_starved;            /* ENOBUFS: re-post at the end of turn  */
	bool addr_counted;            /* holds a per-address admission        */
	bool on_send_list, on_check_list;
	struct net_session *send_next, *check_next, *pool_next;
	uint32_t client_slot;         /* client services: which dial slot     */

	struct net__handle handle;
	/* ctl_op dials (CONNECT), then later ends the connection (SHUTDOWN):
	 * the two never overlap. */
	struct net__op recv_op, send_op, ctl_op;
	struct net_timer timer;       /* idle / connect / flush deadline      */
	uint64_t last_recv_ms;
	uint64_t partial_since_ms;    /* a partial frame began; 0 = none      */

	uint8_t *rbuf;                /* unconsumed received bytes            */
	size_t rbuf_len, rbuf_cap;

	struct net__chunk *sq_head, *sq_tail;
	size_t sq_bytes;

	struct net__addr peer;
	max_align_t user[];           /* service's user_size bytes            */
};

/* ---- services ------------------------------------------------------------ */

enum net__service_kind { NET__SERVER, NET__CLIENT };

/* What server and client services share: config and per-loop pools. */
struct net__service {
	enum net__service_kind kind;
	struct net_runtime *rt;
	struct net_session_config cfg;
	struct net__service *next;    /* runtime's list                        */
	atomic_bool stopping;
	atomic_uint live;             /* connected sessions, any thread        */
	/* Per loop: free sessions of this service (sized for user_size). */
	struct net_session **pool;
	void *owned;                  /* freed with the service (client slots) */
};

/* An accept completion for a server's listener (server.c). */
void net__listener_complete(void *listener, const struct net__cqe *cqe);
/* Free a service at runtime destroy. */
void net__service_free(struct net__service *svc);
/* Register a service with the runtime (for stop and destroy). */
void net__service_register(struct net_runtime *rt, struct net__service *svc);
/* Fill defaults into a session config; -EINVAL if it has no receive hook. */
int net__session_config_normalize(struct net_session_config *cfg);

/* Called by session.c when a session of the service is released after a
 * disconnect (servers drop their count, clients schedule a redial). */
void net__server_session_closed(struct net_session *s);
void net__client_session_closed(struct net_session *s);
/* A dial completed successfully: clients reset their backoff. */
void net__client_session_connected(struct net_session *s);
/* The runtime is stopping: services stop on this loop. */
void net__server_stop_on_loop(struct net__service *svc, struct net_loop *loop);
void net__client_stop_on_loop(struct net__service *svc, struct net_loop *loop);

/* ---- counters ------------------------------------------------------------- */

/*
 * The loop's counters: written only by the loop's thread, read by any
 * thread (net_runtime_stats). Relaxed atomics make that race-free at the
 * cost of plain loads and stores: one writer needs no read-modify-write.
 */
struct net__counters {
	_Atomic uint64_t accepted, rejected, rejected_addr, accept_errors, connected, connect_failed, reused,
		sessions_open, bytes_in, bytes_out, frames_in, frames_out, sends_dropped,
		send_queue_high_water, recv_paused;
	_Atomic uint64_t disconnects[NET_REASON_COUNT];
};

#define NET__LOAD(field) atomic_load_explicit(&(field), memory_order_relaxed)
#define NET__COUNT(loop, field, n)                                              \
	atomic_store_explicit(&(loop)->stats.field,                             \
			      NET__LOAD((loop)->stats.field) + (uint64_t)(n),   \
			      memory_order_relaxed)
#define NET__COUNT_MAX(loop, field, v)                                          \
	do {                                                                    \
		if ((uint64_t)(v) > NET__LOAD((loop)->stats.field))             \
			atomic_store_explicit(&(loop)->stats.field, (uint64_t)(v), \
					      memory_order_relaxed);            \
	} while (0)

/* ---- per-address admission (addr_limit.c) --------------------------------- */

struct net__addr_entry;

struct net__addr_limits {
	unsigned max_live;            /* live sessions per host; 0 = any     */
	unsigned rate;                /* new connections per second; 0 = any */
	struct net__addr_entry **buckets;
	size_t bucket_count, entry_count;
};

int net__addr_limits_init(struct net__addr_limits *l, unsigned max_live, unsigned rate);
/* True (and counted) if a connection from a's host may be taken now. */
bool net__addr_admit(struct net__addr_limits *l, const struct net__addr *a, uint64_t now_ms);
/* A session admitted for a's host has closed. */
void net__addr_release(struct net__addr_limits *l, const struct net__addr *a);
/* Forget hosts with no live session and a full bucket. */
void net__addr_sweep(struct net__addr_limits *l, uint64_t now_ms);
void net__addr_limits_free(struct net__addr_limits *l);

/* ---- loops and the runtime ------------------------------------------------ */

struct net_loop {
	struct net_runtime *rt;
	unsigned index;
	const struct net__engine *engine;
	/* Published by the loop thread after init (atomic: other threads read
	 * it to wake the loop); NULL before init and after fini. */
	void *_Atomic engine_state;
	pthread_t thread;
	uint64_t now_ms;

	pthread_mutex_t post_lock;    /* guards post_*, any thread             */
	struct net__task *post_head, *post_tail;
	size_t post_bytes;            /* bytes of the tasks queued             */
	atomic_bool wake_pending;     /* any thread                            */
	atomic_bool stopping;         /* any thread                            */
	bool stopped;                 /* posts are refused from now on         */

	struct net_timer **timers;    /* binary min-heap on (due, seq)         */
	size_t timer_count, timer_cap;
	uint64_t timer_seq;           /* next arming's sequence number         */
	size_t timer_reserved;        /* timers that exist: cap >= reserved */

	struct net_session **slots;   /* every session ever made on this loop  */
	uint32_t slot_count, slot_cap;

	unsigned listener_ops;        /* accept ops in flight (see loop_idle) */
	struct net_session *send_list;   /* sessions with sends to submit     */
	struct net_session *check_list;  /* sessions to re-check (close, recv) */
	struct net__chunk *free_chunks;  /* cache of NET__CHUNK_SIZE chunks   */
	struct net__send_block *free_send_blocks;
	unsigned free_chunk_count;

	uint8_t *scratch;             /* epoll: one receive buffer per loop    */
	size_t scratch_size;

	struct net__counters stats;
};

struct net_runtime {
	struct net_runtime_config cfg;
	const struct net__engine *engine;
	struct net_loop *loops;
	unsigned loop_count;
	bool started;
	pthread_mutex_t lock;         /* guards services list and start-up     */
	pthread_cond_t cond;
	unsigned loops_ready;
	int start_error;
	struct net__service *services;
};

/* Monotonic milliseconds. */
uint64_t net__now_ms(void);
bool net__on_loop(const struct net_loop *loop);

/* ---- session internals used by services ---------------------------------- */

/* A session from the service's pool on this loop (or a new one), with a
 * fresh id. NULL on allocation failure. */
struct net_session *net__session_acquire(struct net__service *svc, struct net_loop *loop);
/* An accepted, connected socket becomes a live session. */
void net__session_open_accepted(struct net_session *s, net_socket_t sock);
/* Start dialing; the session reports through the client service. */
int net__session_dial(struct net_session *s, const struct sockaddr_storage *addr,
		      socklen_t addr_len, uint32_t timeout_ms);
/* The session named by id, if it lives on this loop and is current. */
struct net_session *net__session_lookup(struct net_loop *loop, net_session_id id);
/* End-of-turn work: submit gathered sends, re-post starved receives,
 * finish closed sessions. */
void net__loop_flush(struct net_loop *loop);
/* Free every pooled session and chunk of a loop (runtime destroy). */
void net__loop_free_sessions(struct net_loop *loop);

/* ---- sockets (socket_posix.c; socket_win.c on Windows) -------------------- */

/* Parse a numeric host and port into addr. */
int net__sock_addr(const char *host, uint16_t port, struct sockaddr_storage *addr,
		   socklen_t *addr_len /* OUT */);
/* A bound, listening, non-blocking socket; *port_out gets the real port. */
int net__sock_listen(const struct sockaddr_storage *addr, socklen_t addr_len, int backlog,
		     net_socket_t *out, uint16_t *port_out);
/* A non-blocking stream socket for dialing addr's family. */
int net__sock_stream(int family, net_socket_t *out);
/* Per-connection options (TCP_NODELAY, non-blocking; SO_SNDBUF when
 * send_buffer is not 0). */
void net__sock_tune(net_socket_t sock, uint32_t send_buffer);
/* The peer of a connected socket (family 0 if it cannot be had). */
void net__sock_peer_addr(net_socket_t sock, struct net__addr *out);
/* From a sockaddr (addr.c, shared by every platform). */
void net__addr_from_sockaddr(const struct sockaddr *sa, struct net__addr *out);
/* "ip:port" (IPv6: "[ip]:port") into buf. */
void net__addr_format(const struct net__addr *a, char *buf, size_t len);
void net__sock_close(net_socket_t sock);
#ifdef _WIN32
/* WSAStartup, once per process; 0 or -errno. */
int net__wsa_init(void);
/* A winsock or Win32 error code as a negative errno value. */
int net__wsa_errno(DWORD wsa_error);
/* A new overlapped, non-inheritable TCP socket (no reuse pool). */
int net__sock_new(int family, net_socket_t *out /* OUT */);
/* engine_iocp.c: take a socket of `family` from this loop's reuse pool
 * (already on the loop's completion port); false if there is none. */
bool net__iocp_reuse_take(struct net_loop *loop, int family, net_socket_t *out /* OUT */);
#endif

#endif /* NET_INTERNAL_H */
