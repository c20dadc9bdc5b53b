/*
 * routing: carry what gamesrv says from the upstream loop to the loops that
 * own the named client sessions.
 *
 * A ToClient names any number of sessions. Its ServerMessage is packed once
 * into a reference-counted frame; each session gets a small task posted to
 * its own loop that holds one reference. Posting (rather than
 * net_send_to) keeps replies, pushes, kicks and link events for one loop in
 * the order gamesrv produced them, and lets the owning loop match a reply
 * against the client's pending requests without a lock.
 *
 * The owning loop is read from the session id itself: libnet documents an
 * id as slot | loop << 24 | generation << 32.
 */
#include <stdlib.h>

#include <rg/log.h>

#include "gateway.h"

/* One packed ServerMessage shared by the tasks that deliver it. */
struct shared_frame {
	atomic_uint refs;
	size_t len;
	uint8_t bytes[];
};

/* One delivery to one client session, run on the session's loop. */
struct delivery_task {
	struct gw_loop *gl;
	struct shared_frame *frame;
	net_session_id session;
	uint32_t seq;
	bool kick;
};

/* One link change, run on one loop. */
struct link_task {
	struct gw_loop *gl;
	bool up;
};

static void frame_release(struct shared_frame *frame)
{
	if (atomic_fetch_sub(&frame->refs, 1) == 1)
		free(frame);
}

/* Pack msg into a new frame holding `refs` references. */
static struct shared_frame *frame_pack(const Ringgate__Client__ServerMessage *msg,
				       unsigned refs)
{
	size_t len = ringgate__client__server_message__get_packed_size(msg);
	struct shared_frame *frame = malloc(sizeof(*frame) + len);

	if (!frame)
		return NULL;
	atomic_init(&frame->refs, refs);
	frame->len = ringgate__client__server_message__pack(msg, frame->bytes);
	return frame;
}

struct gw_loop *gw_route_loop(struct gateway *gw, net_session_id session)
{
	unsigned index = (unsigned)((session >> 24) & 0xff);

	if (session == 0 || index >= gw->loop_count)
		return NULL;
	return &gw->loops[index];
}

static void run_delivery(struct net_loop *loop, void *arg)
{
	struct delivery_task *task = arg;

	(void)loop;
	gw_loop_deliver(task->gl, task->session, task->seq, task->frame->bytes,
			task->frame->len, task->kick);
	frame_release(task->frame);
	free(task);
}

/*
 * Post one delivery of frame (whose reference the task takes over) to the
 * loop of session. On failure the reference is released here, so the
 * caller never has to (ownership passes on every path).
 */
static void post_delivery(struct gateway *gw, struct shared_frame *frame,
			  net_session_id session, uint32_t seq, bool kick)
{
	struct gw_loop *gl = gw_route_loop(gw, session);
	struct delivery_task *task;
	int err;

	if (!gl) {
		RG_WARN("gamesrv named session %#llx, which no loop owns; dropped",
			(unsigned long long)session);
		goto out_release;
	}
	task = malloc(sizeof(*task));
	if (!task) {
		RG_ERROR("out of memory routing to session %#llx",
			 (unsigned long long)session);
		goto out_release;
	}
	*task = (struct delivery_task){ gl, frame, session, seq, kick };
	err = net_loop_post(gl->net, run_delivery, task);
	if (err < 0) {
		RG_WARN("cannot post to loop %u: %s", net_loop_index(gl->net),
			net_strerror(err));
		free(task);
		goto out_release;
	}
	return;

out_release:
	frame_release(frame);
}

void gw_route_to_client(struct gateway *gw, const Ringgate__Internal__ToClient *tc)
{
	struct shared_frame *frame;

	if (!tc->message || tc->n_sessions == 0) {
		RG_WARN("gamesrv sent a ToClient without message or sessions; dropped");
		return;
	}
	frame = frame_pack(tc->message, (unsigned)tc->n_sessions);
	if (!frame) {
		RG_ERROR("out of memory packing a ToClient; dropped");
		return;
	}
	for (size_t i = 0; i < tc->n_sessions; i++)
		post_delivery(gw, frame, tc->sessions[i], tc->message->seq, false);
}

void gw_route_kick(struct gateway *gw, const Ringgate__Internal__Kick *kick)
{
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__Kicked fallback = RINGGATE__CLIENT__KICKED__INIT;
	struct shared_frame *frame;

	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_KICKED;
	msg.kicked = kick->kicked ? kick->kicked : &fallback;
	frame = frame_pack(&msg, 1);
	if (!frame) {
		RG_ERROR("out of memory packing a Kick; dropped");
		return;
	}
	post_delivery(gw, frame, kick->session, 0, true);
}

static void run_link_change(struct net_loop *loop, void *arg)
{
	struct link_task *task = arg;

	(void)loop;
	gw_loop_link_changed(task->gl, task->up);
	free(task);
}

void gw_route_link_changed(struct gateway *gw, bool up)
{
	for (unsigned i = 0; i < gw->loop_count; i++) {
		struct link_task *task = malloc(sizeof(*task));
		int err;

		if (!task) {
			RG_ERROR("out of memory telling loop %u of a link change", i);
			continue;
		}
		*task = (struct link_task){ &gw->loops[i], up };
		err = net_loop_post(gw->loops[i].net, run_link_change, task);
		if (err < 0) {
			RG_WARN("cannot post a link change to loop %u: %s", i,
				net_strerror(err));
			free(task);
		}
	}
}
