/*
 * libnet internals: the core's structures (loops, timers, sessions,
 * services) and the small inline calls through which it drives its engine.
 * The engine contract itself is engine.h.
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

#include "engine.h"

#define NET__CONTAINER_OF(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

struct net__service;
struct net__slab;

/* A peer address, compact (sessions keep it; text is made on demand). */
struct net__addr {
	uint8_t bytes[16];              /* IPv4: the first 4              */
	uint16_t port;
	uint8_t family;                 /* AF_INET, AF_INET6; 0 = unknown  */
};

/* ---- paged pointer arrays ---------------------------------------------------- */

/*
 * A growable array of pointers kept in pages that never move: growing adds
 * a page and copies nothing. (A realloc'd array copies itself at each
 * doubling and leaves the old copies resident: ~16 bytes per session at
 * 10k sessions, for the slot table and again for the timer heap.)
 */
#define NET__PAGE_PTRS 1024
struct net__pages {
	void ***pages;
	size_t page_count;            /* room for page_count * NET__PAGE_PTRS */
};

static inline void **net__page_at(const struct net__pages *a, size_t i)
{
	return &a->pages[i / NET__PAGE_PTRS][i % NET__PAGE_PTRS];
}

/* Room for at least n pointers (loop.c); 0 or -ENOMEM. */
int net__pages_reserve(struct net__pages *a, size_t n);
void net__pages_free(struct net__pages *a);

/* ---- timers -------------------------------------------------------------- */

/*
 * A place in the loop's heap of deadlines, shared by net_timer and a
 * session's own deadline: a session needs no callback, argument or loop
 * pointer of its own, so it keeps 24 bytes instead of a whole timer.
 */
struct net__tnode {
	uint64_t due;
	uint64_t seq;                 /* arming order: breaks ties on due */
	uint32_t heap_index;          /* NET__TIMER_IDLE when not armed */
	bool is_session;              /* a session's deadline; else a net_timer */
};
#define NET__TIMER_IDLE UINT32_MAX

struct net_timer {
	struct net__tnode node;
	struct net_loop *loop;
	uint64_t repeat;
	net_timer_fn fn;
	void *arg;
};

int net__timer_init(struct net_timer *t, struct net_loop *loop, net_timer_fn fn, void *arg);
/* A new node, not armed, with its heap slot reserved (so arming it never
 * allocates, and a deadline cannot be lost to OOM); -ENOMEM. */
int net__tnode_init(struct net__tnode *n, struct net_loop *loop, bool is_session);
/* Arm n to fire timeout_ms from the loop's now (re-arming if armed). */
void net__tnode_start(struct net_loop *loop, struct net__tnode *n, uint64_t timeout_ms);
/* Disarm; harmless if not armed. */
void net__tnode_stop(struct net_loop *loop, struct net__tnode *n);
static inline bool net__tnode_active(const struct net__tnode *n)
{
	return n->heap_index != NET__TIMER_IDLE;
}
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
 * -NET_ESHUTDOWN once the loop has stopped. On an error the task stays the
 * caller's.
 */
int net__loop_post_task(struct net_loop *loop, struct net__task *task, size_t bytes,
			bool bounded);

/* ---- send queue ---------------------------------------------------------- */

/*
 * A block of queued send bytes; blocks form a FIFO per session. Its bytes
 * are its own (data[], cap of them) or, for a shared buffer queued by
 * reference, buf's (cap 0, so nothing is ever appended after them).
 */
struct net__chunk {
	struct net__chunk *next;
	uint32_t start;               /* first byte not yet sent             */
	uint32_t end;                 /* first free byte                     */
	uint32_t cap;
	uint8_t cls;                  /* size class (sendq.c); or NET__CLS_NONE */
	struct net_buf *buf;          /* shared bytes; NULL: data[] holds them */
	uint8_t data[];
};
/* Size classes: 0 is a bare chunk (a shared buffer's), 1..N hold 128 << k
 * bytes with the header; a larger send gets a chunk of its own size. */
#define NET__CLS_COUNT 8
#define NET__CLS_NONE 0xff
/* The most one chunk (so one send, header included) can hold. */
#define NET__CHUNK_MAX ((size_t)UINT32_MAX)

/* An encoded frame shared by many sends (net_buf_*): immutable once made;
 * frame bytes are data[off, off + len). */
struct net_buf {
	atomic_uint refs;             /* any thread                          */
	uint32_t off;
	uint32_t len;
	uint8_t data[];
};

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
	/* The id (net_session_get_id) is made from slot, the loop's index
	 * and generation when asked for, not stored. */
	uint32_t slot;
	uint32_t generation;
	int error;
	atomic_int refs;              /* any thread                           */
	uint32_t client_slot;         /* client services: which dial slot     */
	uint32_t max_frame;           /* framing limit now (net_session_set_
					 max_frame); <= the service's        */
	uint8_t state;                /* enum net__session_state              */
	uint8_t reason;               /* enum net_reason                      */
	uint8_t ops_in_flight;        /* at most a RECV and a write-side op   */
	bool was_connected : 1;       /* on_connected ran: on_disconnected owed */
	bool shutdown_started : 1;    /* CLOSING: write side shut (flushed)   */
	bool peer_eof : 1;            /* the peer's EOF (or a receive error)  */
	bool aborting : 1;            /* CLOSING: deadline passed or I/O
					 error: cancel everything and close    */
	bool recv_paused : 1;         /* PAUSE backpressure                   */
	bool recv_starved : 1;        /* ENOBUFS: re-post at the end of turn  */
	bool addr_counted : 1;        /* holds a per-address admission        */
	bool on_send_list : 1, on_check_list : 1;
	struct net_session *send_next;
	union {                       /* a FREE session is on no check list   */
		struct net_session *check_next;
		struct net_session *pool_next;
	};

	struct net__handle handle;
	struct net__op recv_op;
	/* The write side's one op in flight, or NULL: a dial (CONNECT), a
	 * SEND (in a send block), or the end of the stream (SHUTDOWN). They
	 * never overlap (sends start once connected; the shutdown once all is
	 * sent), so an idle session holds none of them. */
	struct net__op *wop;
	struct net__tnode deadline;   /* idle / connect / flush deadline      */
	uint32_t last_recv_ms;        /* the loop clock's low 32 bits         */
	uint32_t partial_since_ms;    /* a partial frame began (low 32 bits);
					 0 = none                             */
	const struct net_frame_sealer *sealer; /* net_session_set_sealer, or NULL */

	uint8_t *rbuf;                /* unconsumed received bytes            */
	uint32_t rbuf_len, rbuf_cap;  /* < 4 GiB: recv_buffer_max is capped   */

	struct net__chunk *sq_head, *sq_tail;
	size_t sq_bytes;

	struct net__addr peer;
	struct net__tls_conn *tls;    /* TLS state (tls.c); NULL: plaintext   */
	max_align_t user[];           /* service's user_size bytes            */
};

#include "service.h"

/* ---- counters ------------------------------------------------------------- */

/*
 * The loop's counters: written only by the loop's thread, read by any
 * thread (net_runtime_stats). Relaxed atomics make that race-free at the
 * cost of plain loads and stores: one writer needs no read-modify-write.
 */
struct net__counters {
	_Atomic uint64_t accepted, rejected, rejected_addr, accept_errors, connected, connect_failed, reused,
		sessions_open, bytes_in, bytes_out, frames_in, frames_out, sends_dropped,
		send_queue_high_water, recv_paused, waits;
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

	struct net__pages timers;     /* binary min-heap on (due, seq)         */
	size_t timer_count;
	uint64_t timer_seq;           /* next arming's sequence number         */
	size_t timer_reserved;        /* timers that exist: room for them all */

	struct net__pages slots;      /* every session ever made on this loop  */
	uint32_t slot_count;

	unsigned listener_ops;        /* accept ops in flight (see loop_idle) */
	struct net_session *send_list;   /* sessions with sends to submit     */
	struct net_session *check_list;  /* sessions to re-check (close, recv) */
	struct net__chunk *free_chunks[NET__CLS_COUNT]; /* per size class */
	unsigned free_chunk_count[NET__CLS_COUNT];
	struct net__send_block *free_send_blocks;
	struct net__slab *slabs;      /* sessions are carved from these       */
	/* TLS sessions holding OpenSSL record buffers, least recently active
	 * first (tls.c gives an idle one's buffers back). */
	struct net__tls_conn *tls_warm_head, *tls_warm_tail;

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

/* ---- calling the engine (engine.h has the contract) ---------------------- */

static inline int net__engine_init(struct net_loop *loop)
{
	return loop->engine->init(loop);
}

static inline void net__engine_fini(struct net_loop *loop)
{
	loop->engine->fini(loop);
}

static inline int net__engine_attach(struct net_loop *loop, struct net__handle *h)
{
	return loop->engine->attach(loop, h);
}

static inline void net__engine_detach(struct net_loop *loop, struct net__handle *h)
{
	loop->engine->detach(loop, h);
}

static inline int net__engine_submit(struct net_loop *loop, struct net__op *op)
{
	return loop->engine->submit(loop, op);
}

static inline void net__engine_cancel(struct net_loop *loop, struct net__op *op)
{
	loop->engine->cancel(loop, op);
}

static inline int net__engine_run(struct net_loop *loop, int timeout_ms)
{
	return loop->engine->run(loop, timeout_ms);
}

static inline void net__engine_wake(struct net_loop *loop)
{
	loop->engine->wake(loop);
}

static inline void net__engine_recv_release(struct net_loop *loop, uint32_t buf_id)
{
	loop->engine->recv_release(loop, buf_id);
}

/* Monotonic milliseconds. */
uint64_t net__now_ms(void);
bool net__on_loop(const struct net_loop *loop);

/* ---- session internals used by services ---------------------------------- */

/* A session from the service's pool on this loop (or a new one), with a
 * fresh id. NULL on allocation failure. */
struct net_session *net__session_acquire(struct net__service *svc, struct net_loop *loop);
/* An accepted, connected socket becomes a live session. */
void net__session_open_accepted(struct net_session *s, net__sock_t sock);
/* Start dialing; the session reports through the client service. */
int net__session_dial(struct net_session *s, const struct sockaddr_storage *addr,
		      socklen_t addr_len, uint32_t timeout_ms);
/* The session's deadline came (timer.c calls it). */
void net__session_deadline(struct net_session *s);
/* An I/O error (or memory) ends the session at once: no flush. */
void net__session_fail(struct net_session *s, enum net_reason reason, int err);

/* ---- the send queue (sendq.c) ---------------------------------------------- */

/* Room for `need` contiguous bytes at the tail of s's queue, counted in
 * sq_bytes; NULL when out of memory. need < 4 GiB. */
uint8_t *net__sq_reserve(struct net_session *s, size_t need);
/* Queue bytes [start, start + len) of b's data by reference (one ref
 * taken, dropped once they are sent or dropped), counted in sq_bytes;
 * -ENOMEM. */
int net__sq_append_ref(struct net_session *s, struct net_buf *b, uint32_t start, uint32_t len);
/* Point iov[0..max) at the queued bytes, oldest first; returns how many.
 * This is where queued bytes leave the queue for the engine (a SEND). */
unsigned net__sq_gather(const struct net_session *s, struct iovec *iov, unsigned max);
/* `sent` bytes from the head of the queue went to the kernel. */
void net__sq_consume(struct net_session *s, size_t sent);
/* Drop everything queued. */
void net__sq_free(struct net_session *s);
/* A send block for the one SEND in flight (NULL: no memory), and back
 * (given its op). */
struct net__send_block *net__send_block_get(struct net_loop *loop);
void net__send_block_put(struct net_loop *loop, struct net__op *op);
/* Free the loop's chunk and send-block caches. */
void net__sq_loop_free(struct net_loop *loop);

/* ---- receive reassembly (recv.c) ---------------------------------------------- */

/* Bytes received on a connected session: deliver what completes, keep the
 * rest in rbuf. May disconnect the session. */
void net__recv_data(struct net_session *s, const uint8_t *data, size_t len);
/* PAUSE lifted: deliver the input held back in rbuf. */
void net__recv_drain(struct net_session *s);
/* Free rbuf (closing, or runtime destroy). */
void net__rbuf_free(struct net_session *s);

/* ---- TLS (tls.c, built with OpenSSL; see net_tls.h) ------------------------ */

struct net__tls_conn;
#ifdef NET_HAVE_TLS
/* A connected session of a TLS service gets its SSL object (a client's
 * ClientHello is then pending); 0 or -ENOMEM. */
int net__tls_open(struct net_session *s);
/* Free s->tls, if any (finish, runtime destroy). */
void net__tls_close(struct net_session *s);
/* Received records: run the handshake, hand plaintext to net__recv_data.
 * May end the session (NET_REASON_TLS). */
void net__tls_recv(struct net_session *s, const uint8_t *data, size_t len);
/* The peer's EOF: NET_REASON_TLS (and why) if the handshake was not done. */
enum net_reason net__tls_eof_reason(struct net_session *s);
/* True while records (handshake, data, alerts, close_notify) wait to go. */
bool net__tls_pending(const struct net_session *s);
/* With no send in flight: encrypt a batch of queued plaintext and point
 * *out at the records to send; returns their length (0: none). */
size_t net__tls_next_send(struct net_session *s, const uint8_t **out /* OUT */);
/* `sent` bytes of those records went to the kernel. */
void net__tls_sent(struct net_session *s, size_t sent);
/* True while s->tls has not completed (nor failed) its handshake. */
bool net__tls_handshaking(const struct net_session *s);
#else
/* Without OpenSSL no service has a TLS context (service start refuses
 * one), so s->tls is always NULL and these are never reached. */
static inline int net__tls_open(struct net_session *s) { (void)s; return -ENOTSUP; }
static inline void net__tls_close(struct net_session *s) { (void)s; }
static inline void net__tls_recv(struct net_session *s, const uint8_t *d, size_t n)
{ (void)s; (void)d; (void)n; }
static inline enum net_reason net__tls_eof_reason(struct net_session *s)
{ (void)s; return NET_REASON_PEER_CLOSED; }
static inline bool net__tls_pending(const struct net_session *s) { (void)s; return false; }
static inline size_t net__tls_next_send(struct net_session *s, const uint8_t **out)
{ (void)s; *out = NULL; return 0; }
static inline void net__tls_sent(struct net_session *s, size_t sent) { (void)s; (void)sent; }
static inline bool net__tls_handshaking(const struct net_session *s) { (void)s; return false; }
#endif

/* Session number i (< slot_count) of a loop. */
static inline struct net_session *net__slot(const struct net_loop *loop, uint32_t i)
{
	return *net__page_at(&loop->slots, i);
}

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
		     net__sock_t *out, uint16_t *port_out);
/* A non-blocking stream socket for dialing addr's family. */
int net__sock_stream(int family, net__sock_t *out);
/* Per-connection options (TCP_NODELAY, non-blocking; SO_SNDBUF when
 * send_buffer is not 0). */
void net__sock_tune(net__sock_t sock, uint32_t send_buffer);
/* The peer of a connected socket (family 0 if it cannot be had). */
void net__sock_peer_addr(net__sock_t sock, struct net__addr *out);
/* From a sockaddr (addr.c, shared by every platform). */
void net__addr_from_sockaddr(const struct sockaddr *sa, struct net__addr *out);
/* "ip:port" (IPv6: "[ip]:port") into buf. */
void net__addr_format(const struct net__addr *a, char *buf, size_t len, bool with_port);
void net__sock_close(net__sock_t sock);
#ifdef _WIN32
/* WSAStartup, once per process; 0 or -errno. */
int net__wsa_init(void);
/* A winsock or Win32 error code as a negative errno value. */
int net__wsa_errno(DWORD wsa_error);
/* A new overlapped, non-inheritable TCP socket (no reuse pool). */
int net__sock_new(int family, net__sock_t *out /* OUT */);
/* engine_iocp.c: take a socket of `family` from this loop's reuse pool
 * (already on the loop's completion port); false if there is none. */
bool net__iocp_reuse_take(struct net_loop *loop, int family, net__sock_t *out /* OUT */);
#endif

#endif /* NET_INTERNAL_H */
