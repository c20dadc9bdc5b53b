/*
 * The IOCP engine: Windows' own completion port, the seeds' IocpCore.
 *
 * One completion port per loop, created on the loop's thread; completions
 * are drained in batches (GetQueuedCompletionStatusEx) and other threads
 * wake the loop with PostQueuedCompletionStatus. Every socket is associated
 * with its loop's port at attach, and every op carries its own OVERLAPPED
 * (struct net__iocp_op.ov, engine.h), so a completion leads straight back
 * to its op.
 * Completion packets are always queued, even for calls that finish at once
 * (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is not set): that is what keeps
 * completions out of submit().
 *
 * Completion keys:
 *   KEY_IO      an op on a session socket (WSARecv, WSASend, ConnectEx,
 *               DisconnectEx);
 *   KEY_ACCEPT  an AcceptEx on a listening socket: the OVERLAPPED is an
 *               accept slot's;
 *   KEY_DONE    a result the engine decided itself (shutdown()), posted so
 *               it is delivered by run(): op->priv.iocp.done_res;
 *   KEY_WAKE    a cross-thread wake; nothing to dispatch.
 *
 * Accept: the core posts one multishot ACCEPT op; the engine keeps
 * ACCEPTS_POSTED AcceptEx calls in flight into pre-created sockets (the
 * seeds' Listener) and reports each accepted socket as a completion of that
 * op flagged NET__CQE_MORE, after SO_UPDATE_ACCEPT_CONTEXT. The op's final
 * completion comes once it was cancelled (or could not re-post) and every
 * AcceptEx has come back.
 *
 * Receive: WSARecv into a buffer from a per-loop pool, held only while the
 * receive is in flight and handed back through recv_release (the core
 * copies what it does not consume). 0 bytes = the peer closed.
 * Send: the op's gathered iovec becomes one WSABUF array; the core keeps
 * one send in flight per session.
 *
 * Socket reuse (the seeds' DisconnectEx(TF_REUSE_SOCKET)): where a
 * self-test run once per process shows that it works, SHUTDOWN of a
 * connection the peer closed first (so no TIME_WAIT stays on this side) is
 * a DisconnectEx(TF_REUSE_SOCKET) and detach keeps the socket in a per-loop
 * pool instead of closing it (setting h->sock to NET__SOCK_INVALID):
 * dialed sockets go back to ConnectEx (net__sock_stream takes them),
 * accepted ones to AcceptEx. A pooled socket stays associated with its
 * loop's port and so never leaves that loop: accepted sockets are reused
 * only when the runtime has one loop, since the core deals accepted
 * sockets to all loops. Otherwise SHUTDOWN is shutdown(SD_SEND) (the core
 * reads on until the peer's EOF, then closes); where reuse does not work
 * (Wine) that is always so, sockets are closed and new ones made; a ConnectEx
 * that still fails with WSAEISCONN on a reused socket turns connect reuse
 * off for the process and retries on a new socket. net_iocp_counters()
 * (net/net_iocp.h) says which paths ran; RINGGATE_IOCP_REUSE=off|on
 * overrides the self-test (choose_reuse). The self-test itself is
 * iocp_reuse_probe.c.
 *
 * The engine is plain C11 plus the Windows API (no compiler extensions).
 */
#include "internal.h"
#include "iocp.h"
#include "net/net_iocp.h"

#include <mswsock.h>
#include <stdlib.h>
#include <string.h>

#define IOCP_BATCH 256
#define ACCEPTS_POSTED 8
#define REUSE_POOL_MAX 256

enum completion_key { KEY_IO, KEY_ACCEPT, KEY_DONE, KEY_WAKE };

/* net__iocp_handle.flags */
#define IOCP_H_DIALED 1u   /* a CONNECT was submitted on it           */
#define IOCP_H_REUSED 2u   /* taken from the reuse pool               */
#define IOCP_H_REUSABLE 4u /* DisconnectEx(TF_REUSE_SOCKET) completed */
#define IOCP_H_PEER_CLOSED 8u /* a receive completed with 0 bytes     */

/* ---- process-wide: extension functions, reuse verdicts, counters -------- */

static LPFN_ACCEPTEX accept_ex;
static LPFN_CONNECTEX connect_ex;
static LPFN_DISCONNECTEX disconnect_ex;
static LPFN_GETACCEPTEXSOCKADDRS get_accept_ex_sockaddrs;

static INIT_ONCE probe_once = INIT_ONCE_STATIC_INIT;
static int probe_status;
static bool accept_reuse_works;
static volatile LONG connect_reuse_works; /* cleared at run time on WSAEISCONN */

static volatile LONG64 n_accept_fresh, n_accept_reused, n_connect_fresh, n_connect_reused,
	n_disconnect_reuse, n_shutdown_close, n_reuse_fallbacks;

static void count(volatile LONG64 *counter)
{
	InterlockedIncrement64(counter);
}

void net_iocp_counters(struct net_iocp_counters *out)
{
	memset(out, 0, sizeof(*out));
	out->accept_reuse_works = accept_reuse_works;
	out->connect_reuse_works = InterlockedCompareExchange(&connect_reuse_works, 0, 0) != 0;
	out->accept_fresh = (uint64_t)InterlockedCompareExchange64(&n_accept_fresh, 0, 0);
	out->accept_reused = (uint64_t)InterlockedCompareExchange64(&n_accept_reused, 0, 0);
	out->connect_fresh = (uint64_t)InterlockedCompareExchange64(&n_connect_fresh, 0, 0);
	out->connect_reused = (uint64_t)InterlockedCompareExchange64(&n_connect_reused, 0, 0);
	out->disconnect_reuse = (uint64_t)InterlockedCompareExchange64(&n_disconnect_reuse, 0, 0);
	out->shutdown_close = (uint64_t)InterlockedCompareExchange64(&n_shutdown_close, 0, 0);
	out->reuse_fallbacks = (uint64_t)InterlockedCompareExchange64(&n_reuse_fallbacks, 0, 0);
}

static bool connect_reuse_on(void)
{
	return InterlockedCompareExchange(&connect_reuse_works, 0, 0) != 0;
}

/* ---- per loop ---------------------------------------------------------------- */

struct accept_set;

/* One AcceptEx in flight (the seeds' AcceptEvent). */
struct accept_slot {
	OVERLAPPED ov;
	struct accept_set *set;
	SOCKET sock;                  /* the pre-created socket it accepts into */
	bool reused;
	char addrs[2 * ACCEPT_ADDR_LEN];
};

/* The AcceptEx calls behind one multishot ACCEPT op. */
struct accept_set {
	struct accept_set *next;
	struct net__op *op;
	SOCKET listen;
	int family;
	unsigned posted;              /* slots with an AcceptEx in flight       */
	bool ending;                  /* cancelled or failed: no more re-posts  */
	int32_t final_res;
	struct accept_slot slots[ACCEPTS_POSTED];
};

struct spare_pool {
	SOCKET sock[REUSE_POOL_MAX];
	int family[REUSE_POOL_MAX];
	unsigned count;
};

struct iocp_state {
	HANDLE port;
	/* Receive buffers: bufs[id], free ids on a stack. */
	uint8_t **bufs;
	uint32_t *free_ids;
	uint32_t buf_count, buf_cap, free_count, buf_size;
	/* Sockets kept after DisconnectEx(TF_REUSE_SOCKET). */
	struct spare_pool dialed, accepted;
	bool accept_reuse_here;       /* one loop: accepted sockets stay here   */
	SOCKET taken;                 /* pooled socket handed out, not attached */
	struct accept_set *accept_sets;
	OVERLAPPED_ENTRY entries[IOCP_BATCH];
};

static struct iocp_state *state_of(struct net_loop *loop)
{
	return loop->engine_state;
}

/* The result of a completed overlapped call: bytes, or -errno. */
static int32_t io_result(SOCKET sock, OVERLAPPED *ov, DWORD bytes)
{
	DWORD n, flags;

	if (ov->Internal == 0) /* STATUS_SUCCESS */
		return (int32_t)bytes;
	if (WSAGetOverlappedResult(sock, ov, &n, FALSE, &flags))
		return (int32_t)n;
	return net__wsa_errno((DWORD)WSAGetLastError());
}

static int associate(struct iocp_state *st, SOCKET sock, enum completion_key key)
{
	if (CreateIoCompletionPort((HANDLE)sock, st->port, (ULONG_PTR)key, 0) == NULL)
		return net__wsa_errno(GetLastError());
	return 0;
}

/* ---- receive buffers ----------------------------------------------------------- */

static int recv_buf_get(struct iocp_state *st, uint32_t *id /* OUT */)
{
	if (st->free_count) {
		*id = st->free_ids[--st->free_count];
		return 0;
	}
	if (st->buf_count == st->buf_cap) {
		uint32_t cap = st->buf_cap ? st->buf_cap * 2 : 64;
		uint8_t **bufs = realloc(st->bufs, cap * sizeof(*bufs));
		uint32_t *ids;

		if (!bufs)
			return -ENOMEM;
		st->bufs = bufs;
		ids = realloc(st->free_ids, cap * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		st->free_ids = ids;
		st->buf_cap = cap;
	}
	st->bufs[st->buf_count] = malloc(st->buf_size);
	if (!st->bufs[st->buf_count])
		return -ENOMEM;
	*id = st->buf_count++;
	return 0;
}

static void recv_buf_put(struct iocp_state *st, uint32_t id)
{
	st->free_ids[st->free_count++] = id;
}

/* ---- the reuse pool ---------------------------------------------------------------- */

static bool spare_push(struct spare_pool *pool, SOCKET sock, int family)
{
	if (pool->count == REUSE_POOL_MAX)
		return false;
	pool->sock[pool->count] = sock;
	pool->family[pool->count] = family;
	pool->count++;
	return true;
}

static SOCKET spare_pop(struct spare_pool *pool, int family)
{
	for (unsigned i = pool->count; i-- > 0;) {
		SOCKET sock = pool->sock[i];

		if (pool->family[i] != family)
			continue;
		pool->count--;
		pool->sock[i] = pool->sock[pool->count];
		pool->family[i] = pool->family[pool->count];
		return sock;
	}
	return INVALID_SOCKET;
}

static void spare_close_all(struct spare_pool *pool)
{
	while (pool->count)
		closesocket(pool->sock[--pool->count]);
}

bool net__iocp_reuse_take(struct net_loop *loop, int family, net__sock_t *out)
{
	struct iocp_state *st = state_of(loop);
	SOCKET sock;

	if (!st || !connect_reuse_on())
		return false;
	sock = spare_pop(&st->dialed, family);
	if (sock == INVALID_SOCKET)
		return false;
	/* attach will find it already on this port and must accept that. */
	st->taken = sock;
	*out = (net__sock_t)sock;
	return true;
}

/*
 * RINGGATE_IOCP_REUSE: unset = the self-test decides; "off" = never reuse;
 * "on" = assume reuse works without the self-test (to check a real Windows
 * host, or the run-time fallback: a refused ConnectEx still turns connect
 * reuse off, but nothing catches a broken AcceptEx reuse).
 */
static void choose_reuse(const char *mode)
{
	if (mode && strcmp(mode, "off") == 0)
		return;
	if (mode && strcmp(mode, "on") == 0) {
		InterlockedExchange(&connect_reuse_works, 1);
		accept_reuse_works = true;
		return;
	}
	{
		const struct net__iocp_ext ext = { accept_ex, connect_ex, disconnect_ex };
		bool connect_works, accept_works;

		net__iocp_probe_reuse(&ext, &connect_works, &accept_works);
		if (connect_works)
			InterlockedExchange(&connect_reuse_works, 1);
		accept_reuse_works = accept_works;
	}
}

/* ---- probe, init, fini ------------------------------------------------------------- */

static int load_extension(SOCKET sock, GUID guid, void *fn, size_t fn_size)
{
	DWORD bytes;

	if (WSAIoctl(sock, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof(guid), fn,
		     (DWORD)fn_size, &bytes, NULL, NULL) != 0)
		return net__wsa_errno((DWORD)WSAGetLastError());
	return 0;
}

static BOOL CALLBACK probe_run(PINIT_ONCE once, PVOID param, PVOID *context)
{
	GUID accept_guid = WSAID_ACCEPTEX, connect_guid = WSAID_CONNECTEX;
	GUID disconnect_guid = WSAID_DISCONNECTEX, sockaddrs_guid = WSAID_GETACCEPTEXSOCKADDRS;
	net__sock_t sock;
	int err;

	(void)once;
	(void)param;
	(void)context;
	err = net__sock_new(AF_INET, &sock);
	if (err) {
		probe_status = err;
		return TRUE;
	}
	/* The pointers belong to the TCP provider; IPv4 and IPv6 share it. */
	err = load_extension((SOCKET)sock, accept_guid, &accept_ex, sizeof(accept_ex));
	if (!err)
		err = load_extension((SOCKET)sock, connect_guid, &connect_ex, sizeof(connect_ex));
	if (!err)
		err = load_extension((SOCKET)sock, disconnect_guid, &disconnect_ex,
				     sizeof(disconnect_ex));
	if (!err)
		err = load_extension((SOCKET)sock, sockaddrs_guid, &get_accept_ex_sockaddrs,
				     sizeof(get_accept_ex_sockaddrs));
	closesocket((SOCKET)sock);
	probe_status = err;
	if (!err)
		choose_reuse(getenv("RINGGATE_IOCP_REUSE"));
	return TRUE;
}

/* Usable when winsock starts and the Microsoft extension functions load;
 * the reuse self-test runs here too, once per process. */
static int iocp_probe(void)
{
	InitOnceExecuteOnce(&probe_once, probe_run, NULL, NULL);
	return probe_status;
}

static int iocp_init(struct net_loop *loop)
{
	struct iocp_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
	if (!st->port) {
		int err = net__wsa_errno(GetLastError());

		free(st);
		return err;
	}
	st->buf_size = loop->rt->cfg.recv_buffer_size;
	st->taken = INVALID_SOCKET;
	st->accept_reuse_here = accept_reuse_works && loop->rt->loop_count == 1;
	loop->engine_state = st;
	return 0;
}

static void iocp_fini(struct net_loop *loop)
{
	struct iocp_state *st = state_of(loop);

	loop->engine_state = NULL;
	spare_close_all(&st->dialed);
	spare_close_all(&st->accepted);
	for (uint32_t i = 0; i < st->buf_count; i++)
		free(st->bufs[i]);
	free(st->bufs);
	free(st->free_ids);
	CloseHandle(st->port);
	free(st);
}

/*
 * Whether a socket closing now could be used again on this loop (and
 * there is room to keep it). Only after the peer closed first: the side
 * that closes first keeps TIME_WAIT, and DisconnectEx on it may not
 * complete until that ends (minutes), holding the session's close and its
 * redial. A passive close completes at once.
 */
static bool reuse_wanted(const struct iocp_state *st, const struct net__handle *h)
{
	if (!(h->priv.iocp.flags & IOCP_H_PEER_CLOSED))
		return false;
	if (h->priv.iocp.flags & IOCP_H_DIALED)
		return connect_reuse_on() && st->dialed.count < REUSE_POOL_MAX;
	return st->accept_reuse_here && st->accepted.count < REUSE_POOL_MAX;
}

/* ---- attach, detach ------------------------------------------------------------------ */

static bool is_listening(SOCKET sock)
{
	BOOL listening = FALSE;
	int len = sizeof(listening);

	return getsockopt(sock, SOL_SOCKET, SO_ACCEPTCONN, (char *)&listening, &len) == 0 &&
	       listening;
}

static int iocp_attach(struct net_loop *loop, struct net__handle *h)
{
	struct iocp_state *st = state_of(loop);
	SOCKET sock = (SOCKET)h->sock;
	enum completion_key key = is_listening(sock) ? KEY_ACCEPT : KEY_IO;

	h->priv.iocp.flags = 0;
	if (CreateIoCompletionPort((HANDLE)sock, st->port, (ULONG_PTR)key, 0) != NULL)
		return 0;
	/* A pooled socket is on this port already (and only ever on this
	 * loop's: pools never leave their loop). */
	if (GetLastError() == ERROR_INVALID_PARAMETER && sock == st->taken) {
		st->taken = INVALID_SOCKET;
		h->priv.iocp.flags = IOCP_H_REUSED;
		return 0;
	}
	return net__wsa_errno(GetLastError());
}

static int family_of(SOCKET sock)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (getsockname(sock, (struct sockaddr *)&ss, &len) != 0)
		return AF_UNSPEC;
	return ss.ss_family;
}

static void iocp_detach(struct net_loop *loop, struct net__handle *h)
{
	struct iocp_state *st = state_of(loop);
	struct spare_pool *pool;

	/* Asked again: a refused ConnectEx may have turned reuse off since
	 * the DisconnectEx was posted. */
	if (!(h->priv.iocp.flags & IOCP_H_REUSABLE) || !reuse_wanted(st, h))
		return;
	pool = h->priv.iocp.flags & IOCP_H_DIALED ? &st->dialed : &st->accepted;
	if (spare_push(pool, (SOCKET)h->sock, family_of((SOCKET)h->sock)))
		h->sock = NET__SOCK_INVALID; /* kept: the core's close skips it */
}

/* ---- accept ---------------------------------------------------------------------------- */

static int accept_post(struct iocp_state *st, struct accept_slot *slot)
{
	struct accept_set *set = slot->set;
	SOCKET sock = INVALID_SOCKET;
	DWORD bytes;
	int err;

	if (st->accept_reuse_here)
		sock = spare_pop(&st->accepted, set->family);
	slot->reused = sock != INVALID_SOCKET;
	if (!slot->reused) {
		net__sock_t fresh;

		err = net__sock_new(set->family, &fresh);
		if (err)
			return err;
		sock = (SOCKET)fresh;
	}
	memset(&slot->ov, 0, sizeof(slot->ov));
	slot->sock = sock;
	err = net__iocp_started(accept_ex(set->listen, sock, slot->addrs, 0, (DWORD)ACCEPT_ADDR_LEN,
				(DWORD)ACCEPT_ADDR_LEN, &bytes, &slot->ov));
	if (err) {
		closesocket(sock);
		slot->sock = INVALID_SOCKET;
		return err;
	}
	set->posted++;
	return 0;
}

static int accept_start(struct iocp_state *st, struct net__op *op)
{
	struct accept_set *set = calloc(1, sizeof(*set));
	int err = 0;

	if (!set)
		return -ENOMEM;
	set->op = op;
	set->listen = (SOCKET)op->handle->sock;
	set->family = family_of(set->listen);
	for (unsigned i = 0; i < ACCEPTS_POSTED; i++) {
		set->slots[i].set = set;
		set->slots[i].sock = INVALID_SOCKET;
		err = accept_post(st, &set->slots[i]);
		if (err)
			break;
	}
	if (!set->posted) {
		free(set);
		return err;
	}
	set->next = st->accept_sets;
	st->accept_sets = set;
	return 0;
}

static void accept_set_free(struct iocp_state *st, struct accept_set *set)
{
	struct accept_set **p = &st->accept_sets;

	while (*p != set)
		p = &(*p)->next;
	*p = set->next;
	free(set);
}

/* Errors that end one pending accept but not the listener. */
static bool accept_error_transient(int32_t res)
{
	return res == -ECONNRESET || res == -ECONNABORTED;
}

static void accept_slot_done(struct net_loop *loop, struct iocp_state *st,
			     struct accept_slot *slot, DWORD bytes)
{
	struct accept_set *set = slot->set;
	SOCKET sock = slot->sock;
	bool reused = slot->reused;
	int32_t res = io_result(set->listen, &slot->ov, bytes);
	struct net__cqe cqe = { 0 };
	int err;

	set->posted--;
	slot->sock = INVALID_SOCKET;
	if (res >= 0 && !set->ending) {
		struct sockaddr *local, *remote;
		int local_len, remote_len;

		/* The accepted socket takes the listener's properties, so
		 * getpeername, shutdown and DisconnectEx work on it. */
		if (setsockopt(sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
			       (const char *)&set->listen, sizeof(set->listen)) != 0)
			res = net__wsa_errno((DWORD)WSAGetLastError());
		get_accept_ex_sockaddrs(slot->addrs, 0, (DWORD)ACCEPT_ADDR_LEN,
					(DWORD)ACCEPT_ADDR_LEN, &local, &local_len, &remote,
					&remote_len);
		if (res >= 0 && remote_len <= 0)
			res = -ECONNABORTED; /* no peer address: not a usable connection */
	}
	if (res >= 0 && !set->ending) {
		count(reused ? &n_accept_reused : &n_accept_fresh);
		/* Keep ACCEPTS_POSTED in flight: re-post before the core sees
		 * the socket (it may cancel the op from its callback). */
		err = accept_post(st, slot);
		if (err && !set->posted) {
			set->ending = true;
			set->final_res = err;
		}
		if (reused)
			st->taken = sock; /* attach finds it on the port already */
		cqe.res = (int32_t)sock;
		cqe.flags = NET__CQE_MORE;
		net__complete(loop, set->op, &cqe);
	} else {
		if (sock != INVALID_SOCKET)
			closesocket(sock);
		if (!set->ending) {
			err = accept_error_transient(res) ? accept_post(st, slot) : (int)res;
			if (err && !set->posted) {
				set->ending = true;
				set->final_res = err;
			}
		}
	}
	if (set->posted == 0) {
		struct net__op *op = set->op;

		cqe.res = set->ending ? set->final_res : -ECANCELED;
		cqe.flags = 0;
		accept_set_free(st, set);
		net__complete(loop, op, &cqe);
	}
}

static void accept_cancel(struct iocp_state *st, struct net__op *op)
{
	for (struct accept_set *set = st->accept_sets; set; set = set->next) {
		if (set->op != op || set->ending)
			continue;
		set->ending = true;
		set->final_res = -ECANCELED;
		/* NULL: every AcceptEx on the listener, whichever thread. */
		CancelIoEx((HANDLE)set->listen, NULL);
	}
}

/* ---- session ops ------------------------------------------------------------------------ */

static int recv_post(struct iocp_state *st, struct net__op *op)
{
	WSABUF wb;
	DWORD flags = 0;
	uint32_t id;
	int err = recv_buf_get(st, &id);

	if (err)
		return err;
	op->priv.iocp.buf_id = id;
	wb.len = st->buf_size;
	wb.buf = (char *)st->bufs[id];
	err = net__iocp_started(WSARecv((SOCKET)op->handle->sock, &wb, 1, NULL, &flags,
					&op->priv.iocp.ov, NULL) == 0);
	if (err)
		recv_buf_put(st, id);
	return err;
}

static int send_post(struct net__op *op)
{
	WSABUF wb[NET__SEND_IOV_MAX];

	for (unsigned i = 0; i < op->iov_count; i++) {
		wb[i].len = (ULONG)op->iov[i].iov_len;
		wb[i].buf = op->iov[i].iov_base;
	}
	/* WSASend copies the WSABUF array before it returns. */
	return net__iocp_started(WSASend((SOCKET)op->handle->sock, wb, op->iov_count, NULL, 0,
					 &op->priv.iocp.ov, NULL) == 0);
}

/* ConnectEx needs a bound socket: any address of the family, port 0. */
static int bind_any(SOCKET sock, int family)
{
	struct sockaddr_storage any;

	memset(&any, 0, sizeof(any));
	any.ss_family = (ADDRESS_FAMILY)family;
	if (bind(sock, (struct sockaddr *)&any,
		 family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) != 0)
		return net__wsa_errno((DWORD)WSAGetLastError());
	return 0;
}

/* A reused socket was refused (Wine: WSAEISCONN): turn connect reuse off
 * for the process and put a new socket, on this port, in its place. */
static int replace_reused(struct iocp_state *st, struct net__op *op)
{
	struct net__handle *h = op->handle;
	const struct net_session *s = op->owner;
	net__sock_t fresh;
	int err;

	InterlockedExchange(&connect_reuse_works, 0);
	count(&n_reuse_fallbacks);
	spare_close_all(&st->dialed);
	closesocket((SOCKET)h->sock);
	h->sock = NET__SOCK_INVALID;
	h->priv.iocp.flags &= ~IOCP_H_REUSED;
	err = net__sock_new(op->addr->ss_family, &fresh);
	if (err)
		return err;
	err = associate(st, (SOCKET)fresh, KEY_IO);
	if (err) {
		closesocket((SOCKET)fresh);
		return err;
	}
	net__sock_tune(fresh, s->service->cfg.socket_send_buffer);
	h->sock = fresh;
	return 0;
}

static int connect_try(struct net__op *op)
{
	SOCKET sock = (SOCKET)op->handle->sock;
	int err;

	/* A reused socket is still bound from its last connection. */
	if (!(op->handle->priv.iocp.flags & IOCP_H_REUSED)) {
		err = bind_any(sock, op->addr->ss_family);
		if (err)
			return err;
	}
	memset(&op->priv.iocp.ov, 0, sizeof(op->priv.iocp.ov));
	return net__iocp_started(connect_ex(sock, (const struct sockaddr *)op->addr, (int)op->addr_len,
				 NULL, 0, NULL, &op->priv.iocp.ov));
}

static int connect_post(struct iocp_state *st, struct net__op *op)
{
	struct net__handle *h = op->handle;
	int err;

	h->priv.iocp.flags |= IOCP_H_DIALED;
	err = connect_try(op);
	if ((err == -EISCONN || err == -EINVAL) && (h->priv.iocp.flags & IOCP_H_REUSED)) {
		err = replace_reused(st, op);
		if (!err)
			err = connect_try(op);
	}
	if (!err)
		count(h->priv.iocp.flags & IOCP_H_REUSED ? &n_connect_reused : &n_connect_fresh);
	return err;
}

/* A result decided here, delivered by run() like any completion. */
static int post_done(struct iocp_state *st, struct net__op *op, int32_t res)
{
	op->priv.iocp.done_res = res;
	if (!PostQueuedCompletionStatus(st->port, 0, (ULONG_PTR)KEY_DONE, &op->priv.iocp.ov))
		return net__wsa_errno(GetLastError());
	return 0;
}

static int shutdown_post(struct iocp_state *st, struct net__op *op)
{
	SOCKET sock = (SOCKET)op->handle->sock;

	if (reuse_wanted(st, op->handle))
		return net__iocp_started(disconnect_ex(sock, &op->priv.iocp.ov, TF_REUSE_SOCKET, 0));
	count(&n_shutdown_close);
	return post_done(st, op,
			 shutdown(sock, SD_SEND) == 0 ? 0
						      : net__wsa_errno((DWORD)WSAGetLastError()));
}

static int iocp_submit(struct net_loop *loop, struct net__op *op)
{
	struct iocp_state *st = state_of(loop);

	memset(&op->priv.iocp.ov, 0, sizeof(op->priv.iocp.ov));
	switch (op->type) {
	case NET__OP_ACCEPT:
		return accept_start(st, op);
	case NET__OP_RECV:
		return recv_post(st, op);
	case NET__OP_SEND:
		return send_post(op);
	case NET__OP_CONNECT:
		return connect_post(st, op);
	case NET__OP_SHUTDOWN:
		return shutdown_post(st, op);
	}
	return -EINVAL;
}

static void iocp_cancel(struct net_loop *loop, struct net__op *op)
{
	struct iocp_state *st = state_of(loop);

	if (op->type == NET__OP_ACCEPT) {
		accept_cancel(st, op);
		return;
	}
	/* ERROR_NOT_FOUND when it already completed: its packet is queued
	 * and reports the real result. */
	CancelIoEx((HANDLE)(SOCKET)op->handle->sock, &op->priv.iocp.ov);
}

/* ---- completions --------------------------------------------------------------------------- */

static void op_done(struct net_loop *loop, struct iocp_state *st, struct net__op *op, DWORD bytes)
{
	struct net__handle *h = op->handle;
	SOCKET sock = (SOCKET)h->sock;
	struct net__cqe cqe = { 0 };

	cqe.res = io_result(sock, &op->priv.iocp.ov, bytes);
	switch (op->type) {
	case NET__OP_RECV:
		if (cqe.res == 0)
			h->priv.iocp.flags |= IOCP_H_PEER_CLOSED;
		if (cqe.res >= 0) {
			cqe.data = st->bufs[op->priv.iocp.buf_id];
			cqe.buf_id = op->priv.iocp.buf_id;
			cqe.has_buf = true;
		} else {
			recv_buf_put(st, op->priv.iocp.buf_id);
		}
		break;
	case NET__OP_CONNECT:
		/* Without the update, getpeername and shutdown fail on it. */
		if (cqe.res >= 0 && setsockopt(sock, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0)
			cqe.res = net__wsa_errno((DWORD)WSAGetLastError());
		else if (cqe.res > 0)
			cqe.res = 0;
		break;
	case NET__OP_SHUTDOWN:
		if (cqe.res >= 0) {
			cqe.res = 0;
			h->priv.iocp.flags |= IOCP_H_REUSABLE;
			count(&n_disconnect_reuse);
		}
		break;
	case NET__OP_SEND:
	case NET__OP_ACCEPT:
		break;
	}
	net__complete(loop, op, &cqe);
}

static void dispatch(struct net_loop *loop, struct iocp_state *st, const OVERLAPPED_ENTRY *e)
{
	struct net__cqe cqe = { 0 };
	struct net__op *op;

	switch ((enum completion_key)e->lpCompletionKey) {
	case KEY_WAKE:
		return;
	case KEY_ACCEPT:
		accept_slot_done(loop, st, NET__CONTAINER_OF(e->lpOverlapped, struct accept_slot, ov),
				 e->dwNumberOfBytesTransferred);
		return;
	case KEY_DONE:
		op = NET__CONTAINER_OF(e->lpOverlapped, struct net__op, priv.iocp.ov);
		cqe.res = op->priv.iocp.done_res;
		net__complete(loop, op, &cqe);
		return;
	case KEY_IO:
		op_done(loop, st, NET__CONTAINER_OF(e->lpOverlapped, struct net__op, priv.iocp.ov),
			e->dwNumberOfBytesTransferred);
		return;
	}
}

static int iocp_run(struct net_loop *loop, int timeout_ms)
{
	struct iocp_state *st = state_of(loop);
	ULONG n = 0;

	NET__COUNT(loop, waits, 1);
	if (!GetQueuedCompletionStatusEx(st->port, st->entries, IOCP_BATCH, &n,
					 timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms, FALSE)) {
		DWORD err = GetLastError();

		if (err != WAIT_TIMEOUT)
			return net__wsa_errno(err);
		n = 0;
	}
	loop->now_ms = net__now_ms();
	for (ULONG i = 0; i < n; i++)
		dispatch(loop, st, &st->entries[i]);
	return 0;
}

static void iocp_wake(struct net_loop *loop)
{
	struct iocp_state *st = state_of(loop);

	/* Before init or after fini there is nothing to wake. */
	if (st)
		PostQueuedCompletionStatus(st->port, 0, (ULONG_PTR)KEY_WAKE, NULL);
}

static void iocp_recv_release(struct net_loop *loop, uint32_t buf_id)
{
	recv_buf_put(state_of(loop), buf_id);
}

const struct net__engine net__engine_iocp = {
	.name = "iocp",
	.probe = iocp_probe,
	.init = iocp_init,
	.fini = iocp_fini,
	.attach = iocp_attach,
	.detach = iocp_detach,
	.submit = iocp_submit,
	.cancel = iocp_cancel,
	.run = iocp_run,
	.wake = iocp_wake,
	.recv_release = iocp_recv_release,
};
