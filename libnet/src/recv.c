/*
 * Receive reassembly: what a session does with received bytes.
 *
 * Bytes are handed to the application straight from the engine's buffer
 * when nothing is held back (the fast path); only what the application
 * did not consume (a partial frame, or input held back by PAUSE) is
 * copied to the session's rbuf, which is freed as soon as it is empty. With
 * framing, rbuf is only ever filled up to the end of its first frame, so it
 * stays at most one frame long (recv_buffer_max) outside PAUSE.
 *
 * Everything here runs on the session's loop, for a connected session; a
 * disconnect started by the application or by a framing error ends the
 * delivery at once.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Hand buffered bytes to the application. Returns bytes consumed, or -1
 * after starting a disconnect.
 */
static long deliver(struct net_session *s, const uint8_t *data, size_t len)
{
	const struct net_session_config *cfg = &s->service->cfg;
	const struct net_session_ops *ops = cfg->ops;
	size_t used = 0;

	if (!ops->on_frame) {
		long n = ops->on_recv(s, data, len);

		if (n < 0 || (size_t)n > len) {
			net_session_disconnect(s, NET_REASON_APP_ERROR);
			return -1;
		}
		return n;
	}
	/* PAUSE stops delivery mid-buffer: the rest waits in rbuf. */
	while (s->state == NET__S_CONNECTED && used < len && !s->recv_paused) {
		size_t hdr_len, body_len;
		int rc = net_frame_parse(data + used, len - used, s->max_frame, &hdr_len, &body_len);

		if (rc < 0) {
			net_session_disconnect(s, rc == -EMSGSIZE ? NET_REASON_FRAME_TOO_LARGE
								   : NET_REASON_BAD_FRAME);
			return -1;
		}
		if (rc == 0 || len - used - hdr_len < body_len)
			break;
		NET__COUNT(s->loop, frames_in, 1);
		if (ops->on_frame(s, data + used + hdr_len, body_len) < 0) {
			net_session_disconnect(s, NET_REASON_APP_ERROR);
			return -1;
		}
		used += hdr_len + body_len;
	}
	return (long)used;
}

/*
 * Append to rbuf. Outside PAUSE the cap is recv_buffer_max: rbuf then holds
 * at most one partial frame (or what on_recv left). While paused it may
 * also hold the rest of the one engine buffer that arrived as the pause
 * began; no receive is posted while paused, so that too is bounded.
 */
static bool rbuf_append(struct net_session *s, const uint8_t *data, size_t len)
{
	const struct net_session_config *cfg = &s->service->cfg;
	size_t need = s->rbuf_len + len;

	if (need > cfg->recv_buffer_max && !s->recv_paused) {
		net_session_disconnect(s, NET_REASON_RECV_OVERFLOW);
		return false;
	}
	if (need > s->rbuf_cap) {
		size_t cap = s->rbuf_cap ? s->rbuf_cap * 2 : 256;
		uint8_t *buf;

		while (cap < need)
			cap *= 2;
		buf = realloc(s->rbuf, cap);
		if (!buf) {
			net__session_fail(s, NET_REASON_IO_ERROR, -ENOMEM);
			return false;
		}
		s->rbuf = buf;
		s->rbuf_cap = cap;
	}
	memcpy(s->rbuf + s->rbuf_len, data, len);
	s->rbuf_len = need;
	return true;
}

static void rbuf_consume(struct net_session *s, size_t used)
{
	s->rbuf_len -= used;
	if (s->rbuf_len == 0) {
		/* An idle session keeps no receive buffer. */
		free(s->rbuf);
		s->rbuf = NULL;
		s->rbuf_cap = 0;
	} else if (used) {
		memmove(s->rbuf, s->rbuf + used, s->rbuf_len);
	}
}

/* Bytes of new data to add to rbuf: with framing, just enough to complete
 * its first frame (so rbuf stays one frame long); else everything. */
static size_t rbuf_wants(struct net_session *s, size_t len)
{
	const struct net_session_config *cfg = &s->service->cfg;
	size_t hdr_len, body_len, missing;
	int rc;

	if (!cfg->ops->on_frame)
		return len;
	rc = net_frame_parse(s->rbuf, s->rbuf_len, s->max_frame, &hdr_len, &body_len);
	if (rc < 0)
		return len;                 /* deliver() reports it */
	missing = rc == 0 ? 1 : hdr_len + body_len - s->rbuf_len;
	return missing < len ? missing : len;
}

/* Deliver what rbuf holds; true if the session can take more input. */
static bool rbuf_deliver(struct net_session *s)
{
	long used = deliver(s, s->rbuf, s->rbuf_len);

	if (used < 0)
		return false;
	rbuf_consume(s, (size_t)used);
	return s->state == NET__S_CONNECTED;
}

void net__recv_data(struct net_session *s, const uint8_t *data, size_t len)
{
	NET__COUNT(s->loop, bytes_in, len);
	s->last_recv_ms = s->loop->now_ms;
	while (len > 0 && s->state == NET__S_CONNECTED) {
		size_t take;

		if (s->rbuf_len == 0) {
			/* Fast path: parse straight from the engine's buffer. */
			long used = s->recv_paused ? 0 : deliver(s, data, len);

			if (used < 0)
				return;
			data += used;
			len -= (size_t)used;
			break;
		}
		take = rbuf_wants(s, len);
		if (take == 0)
			break;                  /* paused on a complete frame */
		if (!rbuf_append(s, data, take))
			return;
		data += take;
		len -= take;
		if (!rbuf_deliver(s))
			return;
	}
	/* A partial frame, or input held back by PAUSE. */
	if (len > 0 && s->state == NET__S_CONNECTED)
		rbuf_append(s, data, len);
}

/* PAUSE lifted: deliver the input held back, as far as the application
 * takes it (it may pause again, or disconnect). */
void net__recv_drain(struct net_session *s)
{
	while (s->rbuf_len > 0 && !s->recv_paused) {
		size_t before = s->rbuf_len;

		if (!rbuf_deliver(s) || s->rbuf_len == before)
			break;
	}
}

void net__rbuf_free(struct net_session *s)
{
	free(s->rbuf);
	s->rbuf = NULL;
	s->rbuf_len = s->rbuf_cap = 0;
}
