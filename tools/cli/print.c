/*
 * print: one readable line (or a few) per ServerMessage.
 *
 * Lines start with "< " so a script can tell server output from anything
 * else; the first word says what arrived ("login", "moved", "error", ...),
 * then key=value pairs. Replies to requests read "<verb> ok ..."; pushes
 * use the push's own name. Floats print with one decimal.
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
			printf("<   zone id=%u bounds=(%.1f,%.1f)-(%.1f,%.1f)\n", r->zone->id,
			       (double)r->zone->min_x, (double)r->zone->min_y,
			       (double)r->zone->max_x, (double)r->zone->max_y);
		for (size_t i = 0; i < r->n_others; i++)
			print_player("<   other", r->others[i]);
		break;
	}
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_MOVE:
		printf("< move ok x=%.1f y=%.1f\n", (double)m->move->x, (double)m->move->y);
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
		printf("< moved player=%" PRIu64 " x=%.1f y=%.1f\n", m->moved->player_id,
		       (double)m->moved->x, (double)m->moved->y);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_CHAT_LINE:
		printf("< chat_line player=%" PRIu64 " name=%s text=\"%s\"\n",
		       m->chat_line->player_id, m->chat_line->name, m->chat_line->text);
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
