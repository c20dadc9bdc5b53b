/*
 * print: one readable line (or a few) per ServerMessage.
 *
 * Lines start with "< " so a script can tell server output from anything
 * else; the first word says what arrived ("login", "moved", "error", ...),
 * then key=value pairs. Replies to requests read "<verb> ok ..."; pushes
 * use the push's own name. A WorldUpdate prints as its entries in the
 * order a client applies them, each named like the broadcast push of the
 * same meaning (left, joined = entered your view, moved, chat_line), so a
 * script reads either mode alike. Floats print with one decimal.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"

const char *cli_error_name(Ringgate__Client__ErrorCode code)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&ringgate__client__error_code__descriptor,
						     (int)code);

	return v ? v->name : "UNKNOWN";
}

static void print_player(const char *prefix, const Ringgate__Client__PlayerState *p)
{
	printf("%s player=%" PRIu64 " name=%s zone=%u x=%.1f y=%.1f gold=%" PRIu64 "\n",
	       prefix, p->player_id, p->name, p->zone, (double)p->x, (double)p->y, p->gold);
}

static void print_zone(const char *prefix, const Ringgate__Client__Zone *z)
{
	printf("%s id=%u bounds=(%.1f,%.1f)-(%.1f,%.1f)\n", prefix, z->id, (double)z->min_x,
	       (double)z->min_y, (double)z->max_x, (double)z->max_y);
}

static void print_moved(const Ringgate__Client__PlayerMoved *m)
{
	printf("< moved player=%" PRIu64 " x=%.1f y=%.1f\n", m->player_id, (double)m->x,
	       (double)m->y);
}

static void print_chat_line(const Ringgate__Client__ChatLine *c)
{
	printf("< chat_line player=%" PRIu64 " name=%s text=\"%s\"\n", c->player_id, c->name,
	       c->text);
}

static void print_update(const Ringgate__Client__WorldUpdate *u)
{
	for (size_t i = 0; i < u->n_left; i++)
		printf("< left player=%" PRIu64 "\n", u->left[i]);
	for (size_t i = 0; i < u->n_entered; i++)
		print_player("< joined", u->entered[i]);
	for (size_t i = 0; i < u->n_moved; i++)
		print_moved(u->moved[i]);
	for (size_t i = 0; i < u->n_chat; i++)
		print_chat_line(u->chat[i]);
}

void cli_print_message(const Ringgate__Client__ServerMessage *m, uint64_t now_ms)
{
	switch (m->body_case) {
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_ERROR:
		printf("< error seq=%u code=%s message=\"%s\"\n", m->seq,
		       cli_error_name(m->error->code), m->error->message);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LOGIN: {
		const Ringgate__Client__LoginReply *r = m->login;

		if (r->self)
			printf("< login ok player=%" PRIu64 " name=%s created=%s gold=%" PRIu64
			       " zone=%u x=%.1f y=%.1f\n",
			       r->self->player_id, r->self->name, r->created ? "yes" : "no",
			       r->self->gold, r->self->zone, (double)r->self->x,
			       (double)r->self->y);
		else
			printf("< login ok (no player state)\n");
		if (r->zone)
			print_zone("<   zone", r->zone);
		for (size_t i = 0; i < r->n_zones; i++)
			print_zone("<   world zone", r->zones[i]);
		for (size_t i = 0; i < r->n_others; i++)
			print_player("<   other", r->others[i]);
		break;
	}
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_MOVE:
		printf("< move ok x=%.1f y=%.1f zone=%u\n", (double)m->move->x, (double)m->move->y,
		       m->move->zone);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_CHAT:
		printf("< chat ok\n");
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_EARN:
		printf("< earn ok gold=%" PRIu64 "\n", m->earn->gold);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_PONG:
		printf("< pong rtt_ms=%" PRIu64 " server_time_ms=%" PRIu64 "\n",
		       now_ms - m->pong->client_time, m->pong->server_time_ms);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LOGOUT:
		printf("< logout ok\n");
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_JOINED:
		if (m->joined->player)
			print_player("< joined", m->joined->player);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LEFT:
		printf("< left player=%" PRIu64 "\n", m->left->player_id);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_MOVED:
		print_moved(m->moved);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_CHAT_LINE:
		print_chat_line(m->chat_line);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_UPDATE:
		print_update(m->update);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_RESUME:
		printf("< resume ok replayed=%u pending=%zu\n", m->resume->replayed,
		       m->resume->n_pending);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_KICKED:
		printf("< kicked code=%s message=\"%s\"\n", cli_error_name(m->kicked->code),
		       m->kicked->message);
		break;
	default:
		printf("< unknown message seq=%u\n", m->seq);
		break;
	}
}
