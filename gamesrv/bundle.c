/*
 * bundle.c: the views of players and their one WorldUpdate per tick (see
 * bundle.h for the output rule and the overload policy).
 */
#include "bundle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rg/log.h>

#include "array.h"

int gs_bundle_init(struct gs_bundle *b, const struct gs_interest_config *cfg)
{
	memset(b, 0, sizeof(*b));
	b->budget_bytes = cfg->budget_bytes;
	return gs_aoi_init(&b->aoi, cfg->radius, cfg->hysteresis);
}

void gs_bundle_fini(struct gs_bundle *b)
{
	gs_aoi_fini(&b->aoi);
	free(b->states);
	free(b->state_ptrs);
	free(b->moved);
	free(b->moved_ptrs);
	free(b->chat);
	free(b->chat_ptrs);
	memset(b, 0, sizeof(*b));
}

void gs_bundle_fill_state(Ringgate__Client__PlayerState *st, const struct gs_player *p)
{
	st->player_id = p->id;
	st->name = (char *)p->name;
	st->zone = p->zone->bounds.id;
	st->x = p->x;
	st->y = p->y;
	st->gold = p->gold;
}

int gs_bundle_player_online(struct gs_bundle *b, struct gs_player *p)
{
	p->aoi = gs_aoi_entity_add(&b->aoi, p->id, p, p->zone->bounds.id, p->x, p->y);
	return p->aoi ? 0 : -ENOMEM;
}

void gs_bundle_player_offline(struct gs_bundle *b, struct gs_player *p)
{
	if (!p->aoi)
		return;
	gs_aoi_entity_remove(&b->aoi, p->aoi);
	p->aoi = NULL;
}

int gs_bundle_player_moved(struct gs_bundle *b, struct gs_player *p)
{
	return gs_aoi_entity_move(&b->aoi, p->aoi, p->zone->bounds.id, p->x, p->y);
}

int gs_bundle_chat(struct gs_player *p, const char *text)
{
	return gs_aoi_chat_post(p->aoi, p->name, text);
}

size_t gs_bundle_login_view(struct gs_bundle *b, struct gs_player *p,
			 Ringgate__Client__PlayerState *states,
			 Ringgate__Client__PlayerState **ptrs, size_t max)
{
	struct gs_aoi_delta d;
	size_t n = 0;

	gs_aoi_view_reset(&b->aoi, p->aoi);
	if (gs_aoi_view_refresh(&b->aoi, p->aoi, &d) < 0)
		return 0; /* out of memory: the view fills at the next ticks */
	for (size_t i = 0; i < d.entered_count && n < max; i++) {
		if (gs_aoi_view_add(p->aoi, d.entered[i]) < 0)
			break;
		ringgate__client__player_state__init(&states[n]);
		gs_bundle_fill_state(&states[n], d.entered[i]->owner);
		ptrs[n] = &states[n];
		n++;
	}
	return n;
}

/* Bytes a protobuf varint of v takes. */
static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Upper bounds of the encoded size of one entry in a WorldUpdate list:
 * tag, length and body (floats 5 bytes each with their tag). */
static size_t moved_size(uint64_t id)
{
	return 2 + 1 + varint_size(id) + 5 + 5;
}

static size_t entered_size(const struct gs_player *p)
{
	return 3 + 1 + varint_size(p->id) + 2 + strlen(p->name) +
	       1 + varint_size(p->zone->bounds.id) + 5 + 5 + 1 + varint_size(p->gold);
}

/* Make the scratch hold `states` states, `moved` positions and `chat`
 * lines, each with its pointer array. Returns 0 or -ENOMEM. */
static int reserve(struct gs_bundle *b, size_t states, size_t moved, size_t chat)
{
#define RESERVE(arr, cap, n) array_grow((void **)&(arr), &(cap), (n), sizeof(*(arr)))
	if (RESERVE(b->states, b->states_cap, states) < 0 ||
	    RESERVE(b->state_ptrs, b->state_ptrs_cap, states) < 0 ||
	    RESERVE(b->moved, b->moved_cap, moved) < 0 ||
	    RESERVE(b->moved_ptrs, b->moved_ptrs_cap, moved) < 0 ||
	    RESERVE(b->chat, b->chat_cap, chat) < 0 ||
	    RESERVE(b->chat_ptrs, b->chat_ptrs_cap, chat) < 0)
		return -ENOMEM;
#undef RESERVE
	return 0;
}

/* Build and send one client's WorldUpdate, if anything changed. */
static void update_one(struct gs_bundle *b, struct gs_player *p, struct gs_streams *out)
{
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__WorldUpdate wu = RINGGATE__CLIENT__WORLD_UPDATE__INIT;
	struct gs_aoi_entity *o = p->aoi;
	struct gs_aoi_delta d;
	size_t budget = b->budget_bytes, used = 0, ne = 0, nm = 0, nc = 0;
	size_t sent_moved = 0, chat_room = o->chat_count;
	int rc;

	if (gs_aoi_view_refresh(&b->aoi, o, &d) < 0) {
		RG_ERROR("out of memory: the view of %s waits for a later tick", p->name);
		return;
	}
	if (reserve(b, d.entered_count, d.moved_count, o->chat_count) < 0) {
		/* The left entries are out of the view already: send them
		 * alone; entered, moved and chat stay pending for later. */
		RG_ERROR("out of memory: the update of %s carries only left", p->name);
		d.entered_count = d.moved_count = chat_room = 0;
	}
	/* Entered first (a player you do not see yet matters more than a
	 * newer position of one you do), then moved; at least one entry goes
	 * whatever the budget, so a client always makes progress. */
	for (size_t i = 0; i < d.entered_count; i++) {
		const struct gs_player *e = d.entered[i]->owner;
		size_t sz = entered_size(e);

		if (ne > 0 && used + sz > budget)
			break;
		if (gs_aoi_view_add(o, d.entered[i]) < 0)
			break;
		ringgate__client__player_state__init(&b->states[ne]);
		gs_bundle_fill_state(&b->states[ne], e);
		b->state_ptrs[ne] = &b->states[ne];
		ne++;
		used += sz;
	}
	for (; sent_moved < d.moved_count; sent_moved++) {
		struct gs_aoi_view_entry *v = &o->view[d.moved[sent_moved]];
		size_t sz = moved_size(v->e->id);

		if (ne + nm > 0 && used + sz > budget)
			break;
		ringgate__client__player_moved__init(&b->moved[nm]);
		b->moved[nm].player_id = v->e->id;
		b->moved[nm].x = v->e->x;
		b->moved[nm].y = v->e->y;
		b->moved_ptrs[nm] = &b->moved[nm];
		gs_aoi_view_sent(o, d.moved[sent_moved]);
		nm++;
		used += sz;
	}
	/* Cut by the budget: the next scan starts with the first held back. */
	if (sent_moved < d.moved_count)
		gs_aoi_view_set_cursor(o, d.moved[sent_moved]);
	if (b->metrics)
		rg_counter_add(b->metrics->entries_held,
			       d.entered_count - ne + d.moved_count - sent_moved);
	for (size_t i = 0, chat_bytes = 0; i < chat_room; i++) {
		chat_bytes += 8 + strlen(o->chat[i]->name) + strlen(o->chat[i]->text);
		if (i > 0 && chat_bytes > GS_BUNDLE_CHAT_BYTES)
			break;
		nc++;
		ringgate__client__chat_line__init(&b->chat[i]);
		b->chat[i].player_id = o->chat[i]->player_id;
		b->chat[i].name = o->chat[i]->name;
		b->chat[i].text = o->chat[i]->text;
		b->chat_ptrs[i] = &b->chat[i];
	}
	if (d.left_count + ne + nm + nc == 0)
		return;
	wu.n_left = d.left_count;
	wu.left = (uint64_t *)d.left; /* the packer only reads */
	wu.n_entered = ne;
	wu.entered = b->state_ptrs;
	wu.n_moved = nm;
	wu.moved = b->moved_ptrs;
	wu.n_chat = nc;
	wu.chat = b->chat_ptrs;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_UPDATE;
	msg.update = &wu;
	rc = gs_stream_send(out, p, 0, false, &msg);
	if (rc < 0)
		RG_DEBUG("world update to %s not sent: %s", p->name, net_strerror(rc));
	else if (b->metrics)
		rg_counter_add(b->metrics->world_updates, 1);
	gs_aoi_chat_consume(o, nc);
}

int gs_bundle_view_clear(struct gs_bundle *b, struct gs_player *p, struct gs_streams *out)
{
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__WorldUpdate wu = RINGGATE__CLIENT__WORLD_UPDATE__INIT;
	struct gs_aoi_entity *o = p->aoi;
	uint64_t *left;
	int rc = 0;

	if (!o || o->view_count == 0)
		return 0;
	left = malloc(o->view_count * sizeof(*left));
	if (!left)
		return -ENOMEM;
	for (size_t i = 0; i < o->view_count; i++)
		left[i] = o->view[i].e->id;
	wu.n_left = o->view_count;
	wu.left = left;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_UPDATE;
	msg.update = &wu;
	rc = gs_stream_send(out, p, 0, false, &msg);
	free(left);
	if (rc == 0 && b->metrics)
		rg_counter_add(b->metrics->world_updates, 1);
	gs_aoi_view_reset(&b->aoi, o); /* its pending chat lines go too */
	return rc;
}

void gs_bundle_tick(struct gs_bundle *b, struct gs_world *w, struct gs_streams *out)
{
	for (struct gs_client *c = w->client_list; c; c = c->next)
		if (c->player && c->player->aoi && !c->player->frozen) /* frozen: numbers
									  go on elsewhere */
			update_one(b, c->player, out);
}
