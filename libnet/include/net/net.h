/*
 * libnet: ringgate's completion-based network library.
 *
 * The model is the seeds' IOCP design brought to C: operations (accept,
 * connect, recv, send, disconnect) are posted to a loop's completion engine
 * and their completions are dispatched to the object that owns them. Game
 * code never sees a socket: it sees sessions, and reacts through a small
 * table of callbacks (struct net_session_ops), the C form of the seeds'
 * overridden OnConnected/OnRecv/OnSend/OnDisconnected.
 *
 * Threads: a runtime owns N loops, each on its own thread. A session lives
 * on exactly one loop for its whole life, and every callback of that session
 * runs on that loop's thread, so session state needs no lock. Functions say
 * which thread may call them; "any thread" functions are safe everywhere.
 *
 * Callbacks never run from inside the libnet call that causes them: a
 * send, disconnect, timer start or post made from a callback (or from any
 * thread) has its effect, and its callbacks, later in the loop's turn or a
 * later turn. So state may be changed after such a call without a callback
 * having run in between.
 *
 * Lifetimes: a runtime owns its loops, servers, clients and sessions, and
 * frees them in net_runtime_destroy(); pointers to them stay valid until
 * then (a session pointer names a pooled object: hold a ref across threads,
 * or use its id). Configs are copied at start, except what they point to:
 * `ops` (the callback table) and `service_user` must outlive the runtime,
 * `host` strings need not.
 *
 * Errors: functions return 0 (or a count) on success and a negative
 * errno-style code on failure; net_strerror() names it. The library never
 * prints, exits or aborts on peer input.
 *
 * Engines: io_uring and epoll on Linux, IOCP on Windows, behind one internal
 * table; chosen at net_runtime_create() (io_uring when it works, else
 * epoll), overridable with the RINGGATE_ENGINE environment variable
 * ("uring", "epoll"; "iocp" is the only one on Windows).
 * RINGGATE_URING_ENTRIES sets io_uring's submission queue size per loop
 * (a power of two, 1..4096, default 4096; the completion queue is four
 * times as big). A full queue never loses an operation at any size; the
 * tests run with 2 so that the full-queue paths execute.
 */
#ifndef NET_NET_H
#define NET_NET_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * NET_EXPORT marks the public functions. libnet is built as a static
 * library, and a static library needs no marks: the default. A shared
 * build of libnet on Windows defines NET_SHARED and NET_BUILDING while
 * compiling libnet (dllexport), and its users define NET_SHARED
 * (dllimport). Elsewhere the mark keeps the symbol visible under
 * -fvisibility=hidden.
 */
#if defined(_WIN32) && defined(NET_SHARED) && defined(NET_BUILDING)
#define NET_EXPORT __declspec(dllexport)
#elif defined(_WIN32) && defined(NET_SHARED)
#define NET_EXPORT __declspec(dllimport)
#elif defined(__GNUC__)
#define NET_EXPORT __attribute__((visibility("default")))
#else
#define NET_EXPORT
#endif

/* ------------------------------------------------------------------------ */
/* Error codes                                                              */
/* ------------------------------------------------------------------------ */

/*
 * libnet returns errors as negative errno values. Those it promises in this
 * header are errno.h names that every supported C library defines (the
 * Windows CRT has EINVAL, ENOMEM, ENOBUFS, ENOTCONN, EMSGSIZE, EBADMSG,
 * ENOTSUP, EALREADY, ECANCELED, ETIMEDOUT, EADDRINUSE, ...), except
 * ESHUTDOWN, which the Windows CRT lacks: compare with NET_ESHUTDOWN,
 * which is ESHUTDOWN where it exists and Winsock's WSAESHUTDOWN value
 * otherwise. net_strerror() names any of them.
 */
#ifdef ESHUTDOWN
#define NET_ESHUTDOWN ESHUTDOWN
#else
#define NET_ESHUTDOWN 10058 /* WSAESHUTDOWN */
#endif

/* ------------------------------------------------------------------------ */
/* Basic types                                                              */
/* ------------------------------------------------------------------------ */

/*
 * A session id names a session across threads and processes without a
 * pointer: slot | loop << 24 | generation << 32. A slot reused for a new
 * connection gets a new generation, so a stale id never reaches the new
 * session. 0 is never a valid id.
 */
typedef uint64_t net_session_id;

struct net_runtime;
struct net_loop;
struct net_session;
struct net_server;
struct net_client;
struct net_timer;
struct net_tls;

/* Why a session ended; passed to on_disconnected and counted in stats. */
enum net_reason {
	NET_REASON_NONE = 0,
	NET_REASON_LOCAL,          /* net_session_disconnect() by the owner   */
	NET_REASON_PEER_CLOSED,    /* peer closed its side (recv of 0 bytes)  */
	NET_REASON_IO_ERROR,       /* a recv/send failed; see net_session_error */
	NET_REASON_SEND_OVERFLOW,  /* queued send bytes passed the cap        */
	NET_REASON_RECV_OVERFLOW,  /* buffered receive bytes passed the cap   */
	NET_REASON_FRAME_TOO_LARGE,/* a frame header announced > max_frame    */
	NET_REASON_BAD_FRAME,      /* malformed varint length prefix          */
	NET_REASON_APP_ERROR,      /* on_recv/on_frame returned an error      */
	NET_REASON_IDLE_TIMEOUT,   /* nothing received within idle_timeout_ms */
	NET_REASON_SHUTDOWN,       /* its service or runtime is stopping      */
	NET_REASON_FRAME_TIMEOUT,  /* a frame begun was not completed within
				      frame_timeout_ms (slowloris)            */
	NET_REASON_TLS,            /* the TLS handshake failed or a record was
				      bad: net_session_tls_error (net_tls.h) */
	NET_REASON_COUNT
};

/* A short, stable, lower-case name for a reason ("peer_closed", ...). */
NET_EXPORT const char *net_reason_str(enum net_reason reason);

/* A message for a negative error code returned by any libnet function. */
NET_EXPORT const char *net_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Runtime and loops (the seeds' IocpCore)                                  */
/* ------------------------------------------------------------------------ */

/* Most loops a runtime can have: a session id carries the loop index in
 * 8 bits. net_runtime_create refuses more with -EINVAL. */
#define NET_LOOPS_MAX 255

struct net_runtime_config {
	unsigned loops;          /* loop threads (<= NET_LOOPS_MAX); 0 = one per online core */
	const char *engine;      /* "uring", "epoll" or NULL: env, then probe  */
	unsigned recv_buffers;   /* io_uring provided buffers per loop; 0 = 512 */
	unsigned recv_buffer_size; /* bytes each; 0 = 16384                    */
	size_t post_queue_max;   /* bytes of work posted to one loop from other
				    threads and not yet run (sends with their
				    copies, tasks); 0 = 64 MiB. At the bound
				    a post fails with -ENOBUFS and nothing is
				    queued: see net_loop_post. */
};

/*
 * Create a runtime: probe and pick the engine, create the loops (not yet
 * running). cfg may be NULL for defaults. On success *out is set.
 * Any thread; the runtime is freed by net_runtime_destroy().
 */
NET_EXPORT int net_runtime_create(const struct net_runtime_config *cfg,
				  struct net_runtime **out /* OUT */);

/* The name of the engine in use ("uring", "epoll", "iocp"): log it at start. */
NET_EXPORT const char *net_runtime_engine(const struct net_runtime *rt);

/* Number of loops in the runtime. */
NET_EXPORT unsigned net_runtime_loop_count(const struct net_runtime *rt);

/* Loop number i (0 <= i < count); the pointer lives as long as rt. */
NET_EXPORT struct net_loop *net_runtime_loop(struct net_runtime *rt, unsigned i);

/* Start one thread per loop. Any thread, once. */
NET_EXPORT int net_runtime_start(struct net_runtime *rt);

/*
 * Stop the runtime: every server stops accepting, every session is
 * disconnected with NET_REASON_SHUTDOWN (queued sends are flushed up to
 * their flush deadline), client services stop redialing; then the loop
 * threads exit and are joined. Blocks until done. Not from a loop thread.
 */
NET_EXPORT void net_runtime_stop(struct net_runtime *rt);

/* Free a stopped (or never started) runtime and its services. */
NET_EXPORT void net_runtime_destroy(struct net_runtime *rt);

/* The loop whose thread is calling, or NULL on any other thread. */
NET_EXPORT struct net_loop *net_loop_current(void);

/* The index of a loop within its runtime. */
NET_EXPORT unsigned net_loop_index(const struct net_loop *loop);

/* The runtime a loop belongs to. */
NET_EXPORT struct net_runtime *net_loop_runtime(struct net_loop *loop);

/* Milliseconds of the loop's monotonic clock, cached once per loop turn. */
NET_EXPORT uint64_t net_loop_now(const struct net_loop *loop);

typedef void (*net_task_fn)(struct net_loop *loop, void *arg);

/*
 * Run fn(loop, arg) on the loop's thread, in posting order. Any thread.
 * Returns -ENOMEM if the task could not be queued, -ENOBUFS if the loop's
 * queue of posted work already holds post_queue_max bytes (a loop that
 * cannot keep up: the poster decides whether to retry later or give up),
 * -NET_ESHUTDOWN if the loop has stopped; on any error fn is not run. Posts
 * from the loop's own thread count too.
 */
NET_EXPORT int net_loop_post(struct net_loop *loop, net_task_fn fn, void *arg);

/*
 * As net_loop_post, but never refused for the post_queue_max bound (still
 * -ENOMEM or -NET_ESHUTDOWN): for rare control messages that keep state
 * consistent (a link went down, a service stops), never for traffic that
 * grows with load. Any thread.
 */
NET_EXPORT int net_loop_post_control(struct net_loop *loop, net_task_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */
/* ------------------------------------------------------------------------ */

typedef void (*net_timer_fn)(struct net_timer *timer, void *arg);

/*
 * Create a stopped timer on a loop. Loop thread only (or before start).
 * Timers are a binary heap per loop: start/stop are O(log n), so one timer
 * per session is fine at 100k sessions.
 */
NET_EXPORT int net_timer_create(struct net_loop *loop, net_timer_fn fn, void *arg,
				struct net_timer **out /* OUT */);

/* Arm: first fire after timeout_ms, then every repeat_ms (0 = once).
 * Restarting an armed timer re-arms it. Timers due at the same time fire
 * in the order they were armed. A timer armed (or re-armed, even with 0 ms)
 * from a timer callback fires on a later loop turn, never in the same pass.
 * Loop thread only. */
NET_EXPORT void net_timer_start(struct net_timer *timer, uint64_t timeout_ms,
				uint64_t repeat_ms);

/* Disarm; harmless if not armed. Loop thread only. */
NET_EXPORT void net_timer_stop(struct net_timer *timer);

/* True while armed. */
NET_EXPORT bool net_timer_active(const struct net_timer *timer);

/* Stop and free. Safe from inside the timer's own callback. Loop thread. */
NET_EXPORT void net_timer_destroy(struct net_timer *timer);

/* ------------------------------------------------------------------------ */
/* Sessions (the seeds' Session)                                            */
/* ------------------------------------------------------------------------ */

/*
 * The callbacks of a service's sessions. All run on the session's loop.
 * Exactly one of on_recv / on_frame must be set (a config with both, or
 * neither, is refused with -EINVAL); the others may be NULL. The table is
 * not copied: it must outlive the runtime (a static const table is usual).
 */
struct net_session_ops {
	/* Connected (accepted, or a dial completed). The session's user area
	 * (net_session_user) is zeroed before this: set it up here. */
	void (*on_connected)(struct net_session *s);

	/*
	 * Raw bytes arrived: data[0..len) is everything buffered so far.
	 * Return how many bytes were consumed (the rest stays buffered and is
	 * offered again with more data), or a negative code to disconnect
	 * with NET_REASON_APP_ERROR.
	 */
	long (*on_recv)(struct net_session *s, const uint8_t *data, size_t len);

	/*
	 * One complete varint-length-delimited frame arrived (body only).
	 * When set, libnet does the framing with the service's max_frame.
	 * Return 0, or a negative code to disconnect (NET_REASON_APP_ERROR).
	 * The body is valid only during the call.
	 */
	int (*on_frame)(struct net_session *s, const uint8_t *body, size_t len);

	/* bytes were handed to the kernel (a send completion). */
	void (*on_sent)(struct net_session *s, size_t bytes);

	/*
	 * The last callback of a connection: it is closed, nothing is in
	 * flight, and sends are refused. Called once per on_connected.
	 */
	void (*on_disconnected)(struct net_session *s, enum net_reason reason);
};

/* What happens when a session's queued send bytes reach send_queue_max. */
enum net_backpressure {
	/* Client links: cut the session off with NET_REASON_SEND_OVERFLOW. */
	NET_BACKPRESSURE_DISCONNECT = 0,
	/*
	 * Server links: stop reading from this session while its queue is
	 * above send_queue_max / 2 and resume below send_queue_max / 4; a send
	 * that would pass the cap fails with -ENOBUFS instead of growing it.
	 */
	NET_BACKPRESSURE_PAUSE,
};

/*
 * Settings shared by server and client services. Zero means the default.
 * libnet always sets TCP_NODELAY: sends are already gathered into one
 * write per session per loop turn, so Nagle would only add latency.
 */
struct net_session_config {
	const struct net_session_ops *ops; /* not copied: outlives the runtime */
	void *service_user;        /* net_session_service_user() returns it;
				      libnet never touches it, and it must
				      stay valid while callbacks can run     */
	size_t user_size;          /* bytes of per-session user area (zeroed)  */
	size_t max_frame;          /* framing: largest body, default 65536,
				      at most 4 GiB - 1                       */
	size_t send_queue_max;     /* default 1 MiB                            */
	size_t recv_buffer_max;    /* buffered unconsumed bytes, default
				      max_frame + 16, at most 1 GiB           */
	enum net_backpressure backpressure;
	uint32_t idle_timeout_ms;  /* 0: none; else disconnect when silent     */
	uint32_t flush_timeout_ms; /* disconnect deadline (flush, then the
				      peer's EOF), default 2000              */
	uint32_t frame_timeout_ms; /* 0: none; else a partial frame (or, with
				      on_recv, unconsumed bytes) must be
				      completed within this many ms           */
	uint32_t socket_send_buffer; /* 0: the kernel's (autotuned, up to ~4 MiB
				      on loopback); else SO_SNDBUF, so a peer
				      that never reads pins at most this much
				      kernel memory before send_queue_max  */
	struct net_tls *tls;       /* NULL: plaintext; else every session runs
				      TLS with this context (net_tls.h; not
				      copied: it must outlive the runtime)   */
};

/* The id of a session; stable for this connection only. */
NET_EXPORT net_session_id net_session_get_id(const struct net_session *s);

/* The loop the session lives on. */
NET_EXPORT struct net_loop *net_session_loop(const struct net_session *s);

/*
 * The loop that owns the session named by id (whether or not that session
 * is still there), or NULL for an id no loop of rt could have made. Any
 * thread: lets code that keeps per-loop state route work by id without a
 * session pointer.
 */
NET_EXPORT struct net_loop *net_session_id_loop(struct net_runtime *rt, net_session_id id);

/* The per-session user area (user_size bytes), or NULL if user_size == 0. */
NET_EXPORT void *net_session_user(struct net_session *s);

/* The service_user of the service this session belongs to. */
NET_EXPORT void *net_session_service_user(const struct net_session *s);

/* Room for any address net_session_peer writes, its NUL included. */
#define NET_PEER_STRLEN 56

/*
 * The peer address as text ("127.0.0.1:5555", "[::1]:5555") written into
 * buf (size bytes, NET_PEER_STRLEN is always enough; shorter text is cut
 * and NUL-terminated); returns buf ("?:0" when the address is unknown). The
 * session's loop thread, or any thread holding a ref.
 */
NET_EXPORT const char *net_session_peer(const struct net_session *s, char *buf, size_t size);

/* As net_session_peer, without the port ("127.0.0.1", "[::1]"): the key
 * of per-address limits. */
NET_EXPORT const char *net_session_peer_host(const struct net_session *s, char *buf,
					     size_t size);

/* net_session_peer into a buffer of the enclosing block (C only): for a
 * log line, NET_SESSION_PEER(s) is the text. */
#define NET_SESSION_PEER(s) net_session_peer((s), (char[NET_PEER_STRLEN]){ 0 }, NET_PEER_STRLEN)

/* The errno-style code behind NET_REASON_IO_ERROR (negative), else 0. */
NET_EXPORT int net_session_error(const struct net_session *s);

/* True from on_connected until disconnect begins. */
NET_EXPORT bool net_session_connected(const struct net_session *s);

/*
 * Set the largest frame body this session accepts from now on (framing
 * with on_frame only): a header announcing more ends the session with
 * NET_REASON_FRAME_TOO_LARGE as soon as it arrives, before any body is
 * buffered. 0, or a value above the service's max_frame, means the
 * service's max_frame (the receive buffer is sized for it). Applies to the
 * next frame header parsed, including the next one of the same receive
 * when called from on_frame. For protocols that allow only small frames
 * until a handshake ends. Loop thread only.
 */
NET_EXPORT void net_session_set_max_frame(struct net_session *s, size_t max_frame);

/* Bytes queued and not yet handed to the kernel. */
NET_EXPORT size_t net_session_send_queued(const struct net_session *s);

/*
 * Queue len bytes (copied) for sending. Ordered; never interleaved with
 * another send. On the session's loop thread the bytes are queued at
 * once; from any other thread they are posted to the loop (the caller must
 * keep the session alive, e.g. with net_session_ref, or use net_send_to),
 * under net_send_to's rule: bytes handed over that cannot be queued
 * disconnect the session.
 * Returns 0, -ENOTCONN if the session is disconnecting, -ENOBUFS when the
 * PAUSE cap is reached, -ENOMEM, -EMSGSIZE for 4 GiB or more (one send,
 * frame header included, must be below 4 GiB). With the DISCONNECT policy,
 * passing the cap returns -ENOBUFS and starts the disconnect.
 */
NET_EXPORT int net_session_send(struct net_session *s, const void *data, size_t len);

/* As net_session_send, with a varint length prefix: one frame. */
NET_EXPORT int net_session_send_frame(struct net_session *s, const void *body,
				      size_t len);

/*
 * Reserve room for one frame of exactly body_len bytes in the send queue
 * and return a pointer to write the body into (for example with
 * protobuf_c_message_pack), or NULL with *err set. Write the whole body
 * before control returns to the loop: queued bytes go to the kernel at the
 * end of the loop turn, whichever callback (session, timer, posted task)
 * queued them. Loop thread only.
 */
NET_EXPORT void *net_session_reserve_frame(struct net_session *s, size_t body_len,
					   int *err /* OUT */);

/*
 * A frame sealer: a transform every outgoing frame of a session passes
 * through once it is installed (rg/link.h seals the internal links with
 * one). seal writes the sealed form of body[0..len) into
 * out[0..len + overhead), which never overlaps body. It runs on the
 * session's loop thread, once per frame, in the order the frames enter the
 * send queue: per-session state it keeps (a nonce counter) follows the
 * order on the wire whichever thread sent the frame. It cannot fail.
 */
struct net_frame_sealer {
	size_t overhead;
	void (*seal)(struct net_session *s, uint8_t *out, const uint8_t *body, size_t len);
};

/*
 * Seal every frame queued for s from now on with sealer (NULL: stop):
 * net_session_send_frame and net_send_to, from any thread (a frame posted
 * from another thread is sealed when it is queued on the loop). Raw
 * net_session_send is refused with -EPERM on a sealed session (it would
 * go out unsealed). net_session_reserve_frame is not sealed: its caller
 * writes the body in place and must seal it there itself before control
 * returns to the loop (the sealer's owner does, with the same code). The
 * sealer is not copied and must outlive the session. Loop thread only.
 */
NET_EXPORT void net_session_set_sealer(struct net_session *s,
				       const struct net_frame_sealer *sealer);

/*
 * Queue a frame for a session named by id, from any thread (from other
 * threads the frame is copied and posted to the session's loop). The
 * session may have gone: then the frame is dropped and counted in
 * sends_dropped (its on_disconnected has told its owner already).
 *
 * No silent gaps: a frame that cannot be queued for a live session (its
 * PAUSE cap is reached, memory is short, or the loop's post queue is full)
 * disconnects that session with NET_REASON_SEND_OVERFLOW, so the frames
 * after it are never delivered without it; the owner learns through
 * on_disconnected and rebuilds the link (a client service redials).
 *
 * Returns 0 when queued or posted (a posted frame that meets the cap on
 * the loop still disconnects as said), -EINVAL for a malformed id,
 * -EMSGSIZE (as net_session_send, nothing else happens), -ENOBUFS or
 * -ENOMEM when it could not be queued (the session is being disconnected),
 * -ENOTCONN when it is already closing (on the loop thread), -NET_ESHUTDOWN
 * once the loop has stopped.
 */
NET_EXPORT int net_send_to(struct net_runtime *rt, net_session_id id,
			   const void *body, size_t len);

/*
 * Encode once, send to many. A struct net_buf is one frame (varint length
 * prefix and body) that any number of sessions, on any loops, queue by
 * reference: the bytes are written once and never copied per session;
 * each queue holds a reference until its send completes (or the session
 * closes), and the buffer is freed with its last reference.
 *
 * Thread rules: a buffer is written only by its creator, before it is
 * first sent or shared; after that it is read-only and may be sent from,
 * referenced and released on any thread (the reference count is atomic).
 */
struct net_buf;

/*
 * A new shared frame with room for a body of exactly body_len bytes,
 * holding one reference (the caller's). Returns where to write the body
 * (for example with protobuf_c_message_pack), or NULL with *out NULL when
 * memory is short or body_len is 4 GiB or more. Any thread.
 */
NET_EXPORT void *net_buf_frame(size_t body_len, struct net_buf **out /* OUT */);

/* The body of a shared frame (*len: its length), without the prefix. */
NET_EXPORT const uint8_t *net_buf_body(const struct net_buf *b, size_t *len /* OUT */);

/* Take and drop a reference; the last net_buf_unref frees the buffer.
 * net_buf_unref(NULL) does nothing. Any thread. */
NET_EXPORT void net_buf_ref(struct net_buf *b);
NET_EXPORT void net_buf_unref(struct net_buf *b);

/*
 * Queue the frame of b for sending, by reference (the session takes its
 * own reference; the caller keeps its own). Ordered with the session's
 * other sends, under the same cap and policy as net_session_send_frame,
 * with the same returns. Loop thread only.
 */
NET_EXPORT int net_session_send_buf(struct net_session *s, struct net_buf *b);

/*
 * As net_session_send_buf, with suffix[0..suffix_len) (copied) after the
 * body: one frame of the shared body and then the suffix, its length
 * prefix made for this session. For a message that is the same for many
 * sessions but for a few bytes each: protobuf merges fields appended to an
 * encoded message, so a per-session field can be the suffix while the rest
 * is shared. A failure after the prefix was queued ends the session (no
 * torn frame goes out). Loop thread only.
 */
NET_EXPORT int net_session_send_buf_suffixed(struct net_session *s, struct net_buf *b,
					     const void *suffix, size_t suffix_len);

/*
 * Queue the frame of b for each of the n sessions named by ids, from any
 * thread, under net_send_to's rules for each one (a session that has gone
 * is skipped and counted in sends_dropped; one that cannot take the frame
 * is disconnected with NET_REASON_SEND_OVERFLOW, never left with a gap).
 * Sessions on the caller's own loop are queued at once; each other loop
 * gets one posted task holding one reference, whatever the number of its
 * sessions. The caller keeps its own reference either way.
 * Returns 0; -EINVAL if an id names no loop (nothing is sent); -ENOMEM
 * (nothing is sent); or the error of a loop's post that failed (-ENOBUFS,
 * -ENOMEM: that loop's sessions are being disconnected; -NET_ESHUTDOWN).
 */
NET_EXPORT int net_send_buf_many(struct net_runtime *rt, const net_session_id *ids, size_t n,
				 struct net_buf *b);

/*
 * Begin a disconnect: runs once (later calls are ignored). Delivery stops
 * at once (no more on_recv/on_frame); queued sends are flushed, then the
 * write side is shut down, so the peer reads EOF right after the last
 * byte; whatever the peer still sends is read and discarded until its EOF
 * (closing with unread bytes would make the kernel reset the connection
 * and drop what it had not sent). Then the socket is closed and
 * on_disconnected(reason) runs. flush_timeout_ms bounds all of it: at the
 * deadline what is left is dropped and the socket closed. An I/O error
 * closes at once. Loop thread only; other threads use net_disconnect_id().
 */
NET_EXPORT void net_session_disconnect(struct net_session *s, enum net_reason reason);

/*
 * Close at once, for a peer judged dead (silent past its dead time): no
 * flush and no wait for the peer's EOF, which a stopped or vanished peer
 * would make last the whole flush_timeout_ms. Queued sends are dropped
 * (the owner rebuilds its state from on_disconnected, as for any lost
 * connection); in-flight operations are cancelled, the socket closed and
 * on_disconnected(reason) runs. Like net_session_disconnect it runs once:
 * a session already closing is left to that close. Loop thread only.
 */
NET_EXPORT void net_session_abort(struct net_session *s, enum net_reason reason);

/* net_session_disconnect for a session named by id; any thread. */
NET_EXPORT int net_disconnect_id(struct net_runtime *rt, net_session_id id,
				 enum net_reason reason);

/*
 * Keep a session object (not the connection) from going back to the pool;
 * any thread. Each ref needs one unref. A referenced session that has
 * disconnected stays valid but refuses sends with -ENOTCONN.
 */
NET_EXPORT void net_session_ref(struct net_session *s);
NET_EXPORT void net_session_unref(struct net_session *s);

/* ------------------------------------------------------------------------ */
/* Services (the seeds' ServerService and ClientService)                    */
/* ------------------------------------------------------------------------ */

struct net_server_config {
	const char *host;          /* numeric IPv4/IPv6 address; default
				      "127.0.0.1"                             */
	uint16_t port;             /* 0 picks a free port (net_server_port)    */
	unsigned max_sessions;     /* 0 = unlimited; more are closed at accept */
	unsigned max_sessions_per_addr; /* 0 = unlimited: live sessions from one
				      peer IP address; more are closed at accept */
	unsigned accepts_per_addr_per_sec; /* 0 = unlimited: new connections one
				      peer IP may open per second (token
				      bucket, burst of the same size)         */
	int backlog;               /* listen backlog, default 1024             */
	struct net_session_config session;
};

/*
 * Bind, listen and start accepting on loop 0; accepted sessions are spread
 * round-robin over all loops. Errors such as -EADDRINUSE are returned here;
 * -NET_ESHUTDOWN once net_runtime_stop() has begun (a server whose start races
 * with the stop never accepts, and does not delay the stop).
 * Any thread; the runtime may be running or not yet started.
 */
NET_EXPORT int net_server_start(struct net_runtime *rt, const struct net_server_config *cfg,
				struct net_server **out /* OUT */);

/* The port the server listens on (useful with port 0). */
NET_EXPORT uint16_t net_server_port(const struct net_server *srv);

/* Live sessions of the server. Any thread. */
NET_EXPORT unsigned net_server_session_count(const struct net_server *srv);

/*
 * Stop accepting and close the listening socket; with disconnect_all, also
 * disconnect every live session with NET_REASON_SHUTDOWN. Any thread; the
 * server object lives until the runtime is destroyed.
 */
NET_EXPORT void net_server_stop(struct net_server *srv, bool disconnect_all);

struct net_client_config {
	const char *host;          /* numeric address of the peer              */
	uint16_t port;
	unsigned sessions;         /* sessions to keep dialed, default 1       */
	uint32_t backoff_min_ms;   /* first redial delay, default 100          */
	uint32_t backoff_max_ms;   /* cap, default 10000; doubles, +-25% jitter */
	uint32_t connect_timeout_ms; /* default 5000                           */
	struct net_session_config session;
};

/*
 * Dial cfg->sessions sessions to host:port, spread over the loops, and keep
 * them dialed: a failed dial or a dropped session is redialed after an
 * exponential backoff with jitter (reset by a successful connect). Any
 * thread. The client object is the runtime's: it stays valid (stopped or
 * not) until net_runtime_destroy(), which frees it.
 */
NET_EXPORT int net_client_start(struct net_runtime *rt, const struct net_client_config *cfg,
				struct net_client **out /* OUT */);

/* Connected sessions of the client service. Any thread. */
NET_EXPORT unsigned net_client_connected_count(const struct net_client *cli);

/* Stop redialing and disconnect every session (NET_REASON_SHUTDOWN). */
NET_EXPORT void net_client_stop(struct net_client *cli);

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

struct net_stats {
	uint64_t accepted;         /* sessions accepted                        */
	uint64_t rejected;         /* accepts closed at max_sessions           */
	uint64_t rejected_addr;    /* accepts closed by the per-address limits */
	uint64_t accept_errors;    /* accept failures (EMFILE, ...)            */
	uint64_t connected;        /* dials that completed                     */
	uint64_t connect_failed;   /* dials that failed or timed out           */
	uint64_t reused;           /* sessions served from the pool            */
	uint64_t sessions_open;    /* live sessions now                        */
	uint64_t disconnects[NET_REASON_COUNT];
	uint64_t bytes_in, bytes_out;
	uint64_t frames_in, frames_out;
	uint64_t sends_dropped;    /* net_send_to for a session that had gone  */
	uint64_t send_queue_high_water; /* largest queue seen on any session   */
	uint64_t recv_paused;      /* times PAUSE backpressure stopped reading */
	uint64_t waits;            /* calls into the kernel for events: one
				      epoll_wait, or one io_uring_enter per
				      loop turn (submit and wait)             */
};

/* Sum the loops' counters into *out. Any thread; figures are approximate
 * while loops run (each is read without a lock). */
NET_EXPORT void net_runtime_stats(struct net_runtime *rt, struct net_stats *out /* OUT */);

/* ------------------------------------------------------------------------ */
/* Framing: varint-length-delimited messages                                */
/* ------------------------------------------------------------------------ */

/* Longest varint length prefix libnet writes or accepts (uint32 range). */
#define NET_VARINT_MAX 5

/* Encode v as a protobuf varint into out; returns its length (1..10). */
NET_EXPORT size_t net_varint_encode(uint64_t v, uint8_t out[10]);

/*
 * Parse one frame header at data[0..len).
 * Returns 1 with *hdr_len and *body_len set when the header is complete
 * (the body may not all be there yet), 0 when more bytes are needed,
 * -EMSGSIZE when the announced body exceeds max_body (decided as soon as
 * the prefix proves it, before any body is buffered), -EBADMSG for a
 * prefix longer than NET_VARINT_MAX bytes.
 */
NET_EXPORT int net_frame_parse(const uint8_t *data, size_t len, size_t max_body,
			       size_t *hdr_len /* OUT */, size_t *body_len /* OUT */);

#ifdef __cplusplus
}
#endif

#endif /* NET_NET_H */
