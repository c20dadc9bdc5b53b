/*
 * routing: carry what a shard says from its link's loop to the loops that
 * own the named client sessions.
 *
 * A ToClient names any number of sessions. Its ServerMessage is packed once
 * into a shared frame (libnet's struct net_buf), and each loop that owns
 * some of those sessions gets one task (holding one reference) listing its
 * sessions: a broadcast to a crowded zone costs one post per loop, not one
 * per player, and each session's send queue holds the frame by reference,
 * never a copy of it.
 * Posting (rather than net_send_to) keeps replies, pushes, kicks and link
 * events for one loop in the order gamesrv produced them, and lets the
 * owning loop match a reply against the client's pending requests without
 * a lock.
 *
 * The owning loop is read from the wire session id itself
 * (gw_route_loop: gateway_id << 48 | loop << 40 | count); an id of another
 * gateway, or of no loop, is logged and dropped.
 *
 * Session resume (docs/protocol.md section 10): a push to many sessions
 * names each one's ServerMessage.msg_no in ToClient.msg_nos. The frame is
 * still packed once, without it, and still shared: each client's queue
 * holds it by reference followed by that client's msg_no field (protobuf
 * merges fields appended to a message; gw_msg_no_field,
 * net_session_send_buf_suffixed). A ToClient marked
 * resumed (a replay, or the answer to a request of an earlier connection)
 * is delivered as a push although its seq is not 0.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rg/log.h>

#include "gateway.h"

/* One frame for some sessions of one loop, run on that loop. */
struct delivery_task {
	struct gw_loop *gl;
	struct net_buf *frame;         /* one reference                 */
	struct gw_delivery d;
	size_t count;
	uint64_t *msg_nos;             /* NULL, or one per session          */
	uint64_t sessions[];           /* then msg_nos                      */
};

/* One link change, run on one loop. */
struct link_task {
	struct gw_loop *gl;
	uint32_t shard;
	bool up;
};

struct net_buf *gw_frame_pack(const Ringgate__Client__ServerMessage *msg)
{
	size_t len = ringgate__client__server_message__get_packed_size(msg);
	struct net_buf *frame;
	uint8_t *body = net_buf_frame(len, &frame);

	if (body)
		ringgate__client__server_message__pack(msg, body);
	return frame;
}

struct gw_loop *gw_route_loop(struct gateway *gw, uint64_t session)
{
	uint64_t loop = (session >> GW_SESSION_LOOP_SHIFT) & 0xff;

	if (session >> GW_SESSION_GATEWAY_SHIFT != (uint64_t)gw->cfg.gateway_id ||
	    loop >= gw->loop_count || (session & GW_SESSION_COUNT_MASK) == 0)
		return NULL;
	return &gw->loops[loop];
}

static void run_delivery(struct net_loop *loop, void *arg)
{
	struct delivery_task *task = arg;

	(void)loop;
	for (size_t i = 0; i < task->count; i++)
		gw_loop_deliver(task->gl, task->sessions[i], &task->d, task->frame,
				task->msg_nos ? task->msg_nos[i] : 0);
	net_buf_unref(task->frame);
	free(task);
}

/* Post task to its loop; on failure free it and drop its frame reference
 * (ownership of both passes here on every path). Returns 0, or the error
 * of a delivery lost while the loop runs (a stopped loop, at shutdown, has
 * no clients left to deliver to). */
static int post_delivery(struct delivery_task *task)
{
	int err = net_loop_post(task->gl->net, run_delivery, task);

	if (err < 0) {
		if (err != -NET_ESHUTDOWN)
			RG_WARN("cannot post to loop %u: %s", net_loop_index(task->gl->net),
				net_strerror(err));
		net_buf_unref(task->frame);
		free(task);
		return err == -NET_ESHUTDOWN ? 0 : err;
	}
	return 0;
}

/* Drop the sessions no loop owns (a corrupt id from a shard): counts[i] is
 * set to how many of the rest belong to loop i. Returns that total. */
static size_t count_by_loop(struct gateway *gw, uint32_t shard, const uint64_t *sessions,
			    size_t n, size_t *counts /* OUT: loop_count entries */)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++) {
		struct gw_loop *gl = gw_route_loop(gw, sessions[i]);

		if (!gl) {
			RG_WARN("shard %u named session %#llx, which is not one of this gateway's; "
				"dropped", shard, (unsigned long long)sessions[i]);
			continue;
		}
		counts[gl - gw->loops]++;
		total++;
	}
	return total;
}

int gw_route_to_client(struct gateway *gw, uint32_t shard, const Ringgate__Internal__ToClient *tc)
{
	struct delivery_task **tasks = calloc(gw->loop_count, sizeof(*tasks));
	size_t *counts = calloc(gw->loop_count, sizeof(*counts));
	struct net_buf *frame = NULL;
	unsigned task_count = 0;
	int err = 0;

	if (!tc->message || tc->n_sessions == 0) {
		RG_WARN("shard %u sent a ToClient without message or sessions; dropped", shard);
		goto out_free;
	}
	if ((tc->request_id == 0 && tc->message->seq != 0 && !tc->resumed) ||
	    (tc->request_id != 0 && (tc->n_sessions != 1 || tc->resumed)) ||
	    (tc->n_msg_nos != 0 && tc->n_msg_nos != tc->n_sessions)) {
		/* A reply names its one request (by request_id: the seq is
		 * the client's and may be reused); a push names none, and
		 * only a resumed one may carry a seq. */
		RG_WARN("shard %u sent a ToClient with seq %u, request_id %llu, %zu sessions, "
			"%zu msg_nos%s; dropped", shard, tc->message->seq,
			(unsigned long long)tc->request_id, tc->n_sessions, tc->n_msg_nos,
			tc->resumed ? ", resumed" : "");
		goto out_free;
	}
	if (!tasks || !counts)
		goto out_oom;
	if (count_by_loop(gw, shard, tc->sessions, tc->n_sessions, counts) == 0)
		goto out_free;
	for (unsigned i = 0; i < gw->loop_count; i++) {
		size_t numbered = tc->n_msg_nos ? counts[i] * sizeof(uint64_t) : 0;

		if (!counts[i])
			continue;
		tasks[i] = malloc(sizeof(*tasks[i]) + counts[i] * sizeof(uint64_t) + numbered);
		if (!tasks[i])
			goto out_oom;
		*tasks[i] = (struct delivery_task){
			.gl = &gw->loops[i],
			.d = { .shard = shard, .request_id = tc->request_id,
			       .body = (unsigned)tc->message->body_case },
		};
		if (numbered)
			tasks[i]->msg_nos = (uint64_t *)(tasks[i]->sessions + counts[i]);
		task_count++;
	}
	frame = gw_frame_pack(tc->message);
	if (!frame)
		goto out_oom;
	for (size_t i = 0; i < tc->n_sessions; i++) {
		struct gw_loop *gl = gw_route_loop(gw, tc->sessions[i]);

		if (gl) {
			struct delivery_task *task = tasks[gl - gw->loops];

			if (task->msg_nos)
				task->msg_nos[task->count] = tc->msg_nos[i];
			task->sessions[task->count++] = tc->sessions[i];
		}
	}
	for (unsigned i = 0; i < gw->loop_count; i++) {
		if (tasks[i]) {
			int rc;

			net_buf_ref(frame);
			tasks[i]->frame = frame;
			rc = post_delivery(tasks[i]);
			if (rc < 0)
				err = rc;
			tasks[i] = NULL;
		}
	}
	goto out_free;

out_oom:
	RG_ERROR("out of memory routing a ToClient to %zu sessions", tc->n_sessions);
	err = -ENOMEM;
out_free:
	if (tasks)
		for (unsigned i = 0; i < gw->loop_count; i++)
			free(tasks[i]);
	free(tasks);
	free(counts);
	net_buf_unref(frame);
	return err;
}

int gw_route_kick(struct gateway *gw, uint32_t shard, const Ringgate__Internal__Kick *kick)
{
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__Kicked fallback = RINGGATE__CLIENT__KICKED__INIT;
	struct gw_loop *gl = gw_route_loop(gw, kick->session);
	struct net_buf *frame;
	struct delivery_task *task;

	if (!gl) {
		RG_WARN("shard %u kicked session %#llx, which is not one of this gateway's; "
			"dropped", shard, (unsigned long long)kick->session);
		return 0;
	}
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_KICKED;
	msg.kicked = kick->kicked ? kick->kicked : &fallback;
	task = malloc(sizeof(*task) + sizeof(uint64_t));
	frame = task ? gw_frame_pack(&msg) : NULL;
	if (!frame) {
		RG_ERROR("out of memory routing a Kick");
		free(task);
		return -ENOMEM;
	}
	*task = (struct delivery_task){
		.gl = gl, .frame = frame, .count = 1,
		.d = { .shard = shard, .body = (unsigned)msg.body_case, .kick = true },
	};
	task->sessions[0] = kick->session;
	return post_delivery(task);
}

/* The largest Redirect, Handoff or AdoptResult relayed: a client's message
 * (--max-frame) and the fields around it, well within a loop's decode
 * arena (gw_loops_create). */
#define RELAY_MAX(gw) ((size_t)(gw)->cfg.max_frame + 4096)

/* A Redirect, Handoff or AdoptResult from a shard, packed, for one loop
 * (decoded there: the link's decode lives only until on_message returns). */
struct relay_task {
	struct gw_loop *gl;
	uint32_t shard;                /* the shard that sent it        */
	uint32_t body;                 /* its GameToGate body case      */
	size_t len;
	uint8_t bytes[];
};

static void run_relay(struct net_loop *loop, void *arg)
{
	struct relay_task *task = arg;
	struct gw_loop *gl = task->gl;
	ProtobufCAllocator *alloc = &gl->arena.allocator;
	void *m = NULL;

	(void)loop;
	switch (task->body) {
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_REDIRECT:
		m = ringgate__internal__redirect__unpack(alloc, task->len, task->bytes);
		if (m)
			gw_loop_redirect(gl, task->shard, m);
		break;
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HANDOFF:
		m = ringgate__internal__handoff__unpack(alloc, task->len, task->bytes);
		if (m)
			gw_loop_handoff(gl, task->shard, m);
		break;
	default:
		m = ringgate__internal__adopt_result__unpack(alloc, task->len, task->bytes);
		if (m)
			gw_loop_adopt_result(gl, task->shard, m);
		break;
	}
	if (!m) /* decoded once already and bounded: only memory can be short */
		RG_ERROR("out of memory decoding a relayed message from shard %u (body %u); "
			 "dropped", task->shard, task->body);
	rg_pb_arena_reset(&gl->arena);
	free(task);
}

int gw_route_relay(struct gateway *gw, uint32_t shard, const Ringgate__Internal__GameToGate *msg)
{
	const ProtobufCMessage *body;
	struct relay_task *task;
	struct gw_loop *gl;
	uint64_t session;
	size_t len;
	int err;

	switch (msg->body_case) {
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_REDIRECT:
		body = &msg->redirect->base;
		session = msg->redirect->session;
		break;
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HANDOFF:
		body = &msg->handoff->base;
		session = msg->handoff->session;
		break;
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_ADOPT_RESULT:
		body = &msg->adopt_result->base;
		session = msg->adopt_result->session;
		break;
	default:
		return 0;
	}
	gl = gw_route_loop(gw, session);
	if (!gl) {
		RG_WARN("shard %u sent a %s for session %#llx, which is not one of this gateway's; "
			"dropped", shard, body->descriptor->short_name, (unsigned long long)session);
		return 0;
	}
	len = protobuf_c_message_get_packed_size(body);
	if (len > RELAY_MAX(gw)) {
		/* More than a client's request could make: the loop's decode
		 * arena is sized for those. Its request ends at its deadline. */
		RG_WARN("shard %u sent a %s of %zu bytes, over the %zu a client request can "
			"make; dropped", shard, body->descriptor->short_name, len, RELAY_MAX(gw));
		return 0;
	}
	task = malloc(sizeof(*task) + len);
	if (!task) {
		RG_ERROR("out of memory relaying a %s", body->descriptor->short_name);
		return -ENOMEM;
	}
	*task = (struct relay_task){ .gl = gl, .shard = shard, .body = msg->body_case,
				     .len = len };
	protobuf_c_message_pack(body, task->bytes);
	err = net_loop_post(gl->net, run_relay, task);
	if (err < 0) {
		free(task);
		if (err == -NET_ESHUTDOWN)
			return 0; /* stopping: no client is left to relay to */
		RG_WARN("cannot post to loop %u: %s", net_loop_index(gl->net), net_strerror(err));
		return err;
	}
	return 0;
}

static void run_link_change(struct net_loop *loop, void *arg)
{
	struct link_task *task = arg;

	(void)loop;
	gw_loop_link_changed(task->gl, task->shard, task->up);
	free(task);
}

void gw_route_link_changed(struct gateway *gw, uint32_t shard, bool up)
{
	for (unsigned i = 0; i < gw->loop_count; i++) {
		struct link_task *task = malloc(sizeof(*task));
		int err;

		if (!task) {
			RG_ERROR("out of memory telling loop %u of a link change", i);
			continue;
		}
		*task = (struct link_task){ &gw->loops[i], shard, up };
		/* Never refused for a full queue: a loop that missed a link
		 * change would keep its clients' state diverged for good. */
		err = net_loop_post_control(gw->loops[i].net, run_link_change, task);
		if (err < 0) {
			RG_WARN("cannot post a link change to loop %u: %s", i,
				net_strerror(err));
			free(task);
		}
	}
}
