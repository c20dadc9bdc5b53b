/*
 * world.c: zones, players and client sessions (see world.h for the player
 * life cycle and the invariants).
 */
#include "world.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Doubly linked list helpers for the intrusive lists below. */
#define LIST_PUSH(head, node, prev, next)        \
	do {                                     \
		(node)->prev = NULL;             \
		(node)->next = (head);           \
		if (head)                        \
			(head)->prev = (node);   \
		(head) = (node);                 \
	} while (0)

#define LIST_UNLINK(head, node, prev, next)              \
	do {                                             \
		if ((node)->prev)                        \
			(node)->prev->next = (node)->next; \
		else                                     \
			(head) = (node)->next;           \
		if ((node)->next)                        \
			(node)->next->prev = (node)->prev; \
		(node)->prev = (node)->next = NULL;      \
	} while (0)

int gs_world_init(struct gs_world *w, const struct gs_zone_bounds *zones, size_t count)
{
	memset(w, 0, sizeof(*w));
	gs_hmap_init(&w->clients);
	gs_hmap_init(&w->players);
	if (count == 0)
		return -EINVAL;
	for (size_t i = 0; i < count; i++) {
		if (!gs_rules_zone_valid(&zones[i]))
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (zones[j].id == zones[i].id)
				return -EINVAL;
	}
	w->zones = calloc(count, sizeof(*w->zones));
	if (!w->zones)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		w->zones[i].bounds = zones[i];
		w->zones[i].shard = 1; /* the default owner; the game sets the map */
	}
	w->zone_count = count;
	return 0;
}

/* Free a player that is in no zone and bound to no client. */
static void player_free(struct gs_world *w, struct gs_player *p)
{
	gs_hmap_remove(&w->players, p->name, strlen(p->name));
	LIST_UNLINK(w->player_list, p, prev, next);
	free(p);
}

void gs_world_fini(struct gs_world *w)
{
	while (w->client_list) {
		struct gs_client *c = w->client_list;

		if (c->player)
			gs_world_player_unbind(w, c->player);
		gs_world_client_remove(w, c);
	}
	/* Pins belong to calls the owner has ended already (the call table
	 * is destroyed first), so every player can go now. */
	while (w->player_list)
		player_free(w, w->player_list);
	gs_hmap_fini(&w->clients);
	gs_hmap_fini(&w->players);
	free(w->zones);
	memset(w, 0, sizeof(*w));
}

struct gs_zone *gs_world_zone(struct gs_world *w, uint32_t id)
{
	for (size_t i = 0; i < w->zone_count; i++)
		if (w->zones[i].bounds.id == id)
			return &w->zones[i];
	return NULL;
}

/* ---- clients ------------------------------------------------------------- */

struct gs_client *gs_world_client_find(struct gs_world *w, net_session_id link, uint64_t session)
{
	struct gs_client_key key;

	memset(&key, 0, sizeof(key)); /* padding-free, but hash whole bytes */
	key.link = link;
	key.session = session;
	return gs_hmap_get(&w->clients, &key, sizeof(key));
}

struct gs_client *gs_world_client_add(struct gs_world *w, net_session_id link, uint64_t session)
{
	struct gs_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->key.link = link;
	c->key.session = session;
	if (gs_hmap_put(&w->clients, &c->key, sizeof(c->key), c) < 0) {
		free(c);
		return NULL;
	}
	LIST_PUSH(w->client_list, c, prev, next);
	return c;
}

void gs_world_client_remove(struct gs_world *w, struct gs_client *c)
{
	gs_hmap_remove(&w->clients, &c->key, sizeof(c->key));
	LIST_UNLINK(w->client_list, c, prev, next);
	free(c);
}

/* ---- players ------------------------------------------------------------- */

struct gs_player *gs_world_player_find(struct gs_world *w, const char *name)
{
	return gs_hmap_get(&w->players, name, strlen(name));
}

struct gs_zone *gs_world_place(struct gs_world *w, uint32_t zone_id, float *x, float *y)
{
	struct gs_zone *z = gs_world_zone(w, zone_id);

	if (!z || !gs_rules_point_in_zone(&z->bounds, *x, *y)) {
		/* Unknown zone or a bad saved spot: start over at a safe one. */
		z = &w->zones[0];
		*x = z->bounds.min_x + (z->bounds.max_x - z->bounds.min_x) / 2;
		*y = z->bounds.min_y + (z->bounds.max_y - z->bounds.min_y) / 2;
	}
	return z;
}

struct gs_player *gs_world_player_add(struct gs_world *w, struct gs_client *c, uint64_t id,
				const char *name, uint32_t zone_id, float x, float y,
				uint64_t gold)
{
	struct gs_player *p = calloc(1, sizeof(*p));
	struct gs_zone *z = gs_world_place(w, zone_id, &x, &y);

	if (!p)
		return NULL;
	p->id = id;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->zone = z;
	p->x = x;
	p->y = y;
	p->gold = gold;
	p->state = GS_PLAYER_LEAVING;
	if (gs_hmap_put(&w->players, p->name, strlen(p->name), p) < 0) {
		free(p);
		return NULL;
	}
	LIST_PUSH(w->player_list, p, prev, next);
	gs_world_player_bind(w, p, c);
	return p;
}

void gs_world_player_bind(struct gs_world *w, struct gs_player *p, struct gs_client *c)
{
	struct gs_zone *z = p->zone;

	p->state = GS_PLAYER_ONLINE;
	p->pins++; /* the ONLINE pin */
	p->client = c;
	c->player = p;
	LIST_PUSH(z->members, p, zone_prev, zone_next);
	z->member_count++;
	w->online_count++;
}

void gs_world_player_transfer(struct gs_player *p, struct gs_client *c)
{
	p->client->player = NULL;
	p->client = c;
	c->player = p;
}

void gs_world_player_unbind(struct gs_world *w, struct gs_player *p)
{
	struct gs_zone *z = p->zone;

	LIST_UNLINK(z->members, p, zone_prev, zone_next);
	z->member_count--;
	w->online_count--;
	p->client->player = NULL;
	p->client = NULL;
	p->state = GS_PLAYER_LEAVING;
	gs_world_player_unpin(w, p); /* the ONLINE pin */
}

void gs_world_player_pin(struct gs_player *p)
{
	p->pins++;
}

void gs_world_player_unpin(struct gs_world *w, struct gs_player *p)
{
	if (--p->pins == 0 && p->state == GS_PLAYER_LEAVING)
		player_free(w, p);
}

void gs_world_player_move(struct gs_player *p, float x, float y)
{
	p->x = x;
	p->y = y;
}

void gs_world_player_set_zone(struct gs_player *p, struct gs_zone *z)
{
	LIST_UNLINK(p->zone->members, p, zone_prev, zone_next);
	p->zone->member_count--;
	p->zone = z;
	LIST_PUSH(z->members, p, zone_prev, zone_next);
	z->member_count++;
}
