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

int world_init(struct world *w, const struct zone_bounds *zones, size_t count)
{
	memset(w, 0, sizeof(*w));
	hmap_init(&w->clients);
	hmap_init(&w->players);
	if (count == 0)
		return -EINVAL;
	for (size_t i = 0; i < count; i++) {
		if (!rules_zone_valid(&zones[i]))
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (zones[j].id == zones[i].id)
				return -EINVAL;
	}
	w->zones = calloc(count, sizeof(*w->zones));
	if (!w->zones)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++)
		w->zones[i].bounds = zones[i];
	w->zone_count = count;
	return 0;
}

/* Free a player that is in no zone and bound to no client. */
static void player_free(struct world *w, struct player *p)
{
	hmap_remove(&w->players, p->name, strlen(p->name));
	LIST_UNLINK(w->player_list, p, prev, next);
	free(p);
}

void world_fini(struct world *w)
{
	while (w->client_list) {
		struct client *c = w->client_list;

		if (c->player)
			world_player_unbind(w, c->player);
		world_client_remove(w, c);
	}
	/* Pins belong to calls the owner has ended already (the call table
	 * is destroyed first), so every player can go now. */
	while (w->player_list)
		player_free(w, w->player_list);
	hmap_fini(&w->clients);
	hmap_fini(&w->players);
	free(w->zones);
	memset(w, 0, sizeof(*w));
}

struct zone *world_zone(struct world *w, uint32_t id)
{
	for (size_t i = 0; i < w->zone_count; i++)
		if (w->zones[i].bounds.id == id)
			return &w->zones[i];
	return NULL;
}

/* ---- clients ------------------------------------------------------------- */

struct client *world_client_find(struct world *w, net_session_id link, uint64_t session)
{
	struct client_key key;

	memset(&key, 0, sizeof(key)); /* padding-free, but hash whole bytes */
	key.link = link;
	key.session = session;
	return hmap_get(&w->clients, &key, sizeof(key));
}

struct client *world_client_add(struct world *w, net_session_id link, uint64_t session)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->key.link = link;
	c->key.session = session;
	if (hmap_put(&w->clients, &c->key, sizeof(c->key), c) < 0) {
		free(c);
		return NULL;
	}
	LIST_PUSH(w->client_list, c, prev, next);
	return c;
}

void world_client_remove(struct world *w, struct client *c)
{
	hmap_remove(&w->clients, &c->key, sizeof(c->key));
	LIST_UNLINK(w->client_list, c, prev, next);
	free(c);
}

/* ---- players ------------------------------------------------------------- */

struct player *world_player_find(struct world *w, const char *name)
{
	return hmap_get(&w->players, name, strlen(name));
}

struct player *world_player_add(struct world *w, struct client *c, uint64_t id,
				const char *name, uint32_t zone_id, float x, float y,
				uint64_t gold)
{
	struct player *p = calloc(1, sizeof(*p));
	struct zone *z = world_zone(w, zone_id);

	if (!p)
		return NULL;
	if (!z || !rules_point_in_zone(&z->bounds, x, y)) {
		/* Unknown zone or a bad saved spot: start over at a safe one. */
		z = &w->zones[0];
		x = z->bounds.min_x + (z->bounds.max_x - z->bounds.min_x) / 2;
		y = z->bounds.min_y + (z->bounds.max_y - z->bounds.min_y) / 2;
	}
	p->id = id;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->zone = z;
	p->x = x;
	p->y = y;
	p->gold = gold;
	p->state = PLAYER_LEAVING;
	if (hmap_put(&w->players, p->name, strlen(p->name), p) < 0) {
		free(p);
		return NULL;
	}
	LIST_PUSH(w->player_list, p, prev, next);
	world_player_bind(w, p, c);
	return p;
}

void world_player_bind(struct world *w, struct player *p, struct client *c)
{
	struct zone *z = p->zone;

	p->state = PLAYER_ONLINE;
	p->pins++; /* the ONLINE pin */
	p->client = c;
	c->player = p;
	LIST_PUSH(z->members, p, zone_prev, zone_next);
	z->member_count++;
	w->online_count++;
}

void world_player_transfer(struct player *p, struct client *c)
{
	p->client->player = NULL;
	p->client = c;
	c->player = p;
}

void world_player_unbind(struct world *w, struct player *p)
{
	struct zone *z = p->zone;

	LIST_UNLINK(z->members, p, zone_prev, zone_next);
	z->member_count--;
	w->online_count--;
	p->client->player = NULL;
	p->client = NULL;
	p->state = PLAYER_LEAVING;
	world_player_unpin(w, p); /* the ONLINE pin */
}

void world_player_pin(struct player *p)
{
	p->pins++;
}

void world_player_unpin(struct world *w, struct player *p)
{
	if (--p->pins == 0 && p->state == PLAYER_LEAVING)
		player_free(w, p);
}

void world_player_move(struct player *p, float x, float y)
{
	p->x = x;
	p->y = y;
}

void world_player_set_zone(struct player *p, struct zone *z)
{
	LIST_UNLINK(p->zone->members, p, zone_prev, zone_next);
	p->zone->member_count--;
	p->zone = z;
	LIST_PUSH(z->members, p, zone_prev, zone_next);
	z->member_count++;
}
