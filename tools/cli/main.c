/*
 * ringgate-cli: talk to a ringgate gateway from a terminal or a script.
 *
 *   ringgate-cli [--host H] [--port P] [--ca-file F | --tls] [--wait-ms N] < commands
 *
 * With --ca-file (or --tls: the system's CAs) it speaks TLS 1.3 and
 * verifies the gateway's certificate for --host (or --server-name); a
 * refused certificate ends it with exit status 1 and the reason (tls.c).
 * Commands, one per line: login NAME PASSWORD | move X Y [ZONE] | chat TEXT... |
 * earn N | ping | logout | wait MS | help | quit. Server output is printed
 * as "< ..." lines (print.c); the tool's own notes start with "! ".
 *
 * The loop: poll() on the socket and stdin. After sending a request the
 * tool reads no further command until that request's reply arrives (or
 * --reply-timeout-ms passes), so a piped script runs one step at a time,
 * while pushes are printed whenever they arrive. At the end of input (or
 * on quit) it keeps printing pushes for --wait-ms before it exits.
 * A keepalive ping, whose Pong is not printed, is sent after
 * --keepalive-ms without a request, so an idle terminal is not kicked.
 *
 * Session resume (docs/protocol.md section 10): the tool keeps the
 * newest resume token and the highest msg_no it received. When the
 * connection drops without a Kicked, it dials the gateway again (for up
 * to the session's grace period) and sends ResumeRequest instead of
 * reading more input; the ResumeReply prints "! resumed, N messages
 * replayed", and the missed messages follow as usual. --resume 0 turns
 * this off.
 *
 * Exit status: 0 when the input ended (or quit), 1 when the connection
 * failed or was closed by the server (and not resumed), 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <net/net.h>
#include <rg/clock.h>
#include <rg/options.h>

#include "cli.h"

#define MAX_FRAME 65536
#define LINE_MAX_BYTES 1024
#define TOKEN_MAX 128
/* How long to try to come back when the server gave no grace period. */
#define DEFAULT_GRACE_MS 20000
#define REDIAL_MS 200

struct cli {
	int fd;
	SSL *ssl;                     /* TLS (--ca-file, --tls); NULL: plain */
	uint8_t recv_buf[MAX_FRAME + NET_VARINT_MAX];
	size_t recv_len;
	char line_buf[LINE_MAX_BYTES];
	size_t line_len;
	bool stdin_done;
	bool interactive;
	bool server_closed;
	uint32_t next_seq;
	uint32_t awaiting_seq;        /* reply to wait for before more input */
	uint64_t awaiting_deadline_ms;
	uint32_t keepalive_seq;       /* a silent ping; its Pong is not shown */
	uint64_t last_request_ms;
	/* Session resume. */
	uint8_t token[TOKEN_MAX];     /* the newest resume token              */
	size_t token_len;             /* 0: no session to resume              */
	uint32_t grace_ms;
	uint64_t last_msg_no;         /* the highest msg_no received          */
	bool kicked;                  /* a Kicked came: the close is meant    */
	uint32_t resume_seq;          /* the Resume awaiting its answer       */
	enum { RESUME_WAITING, RESUME_RETRY, RESUME_DONE } resume_state;
	uint32_t lost_seq;            /* awaited when the connection dropped  */
	uint32_t replay_left;         /* replayed messages still to come      */
	char port_text[16];
	/* Options (cli_options). */
	char *host;
	long port;
	long wait_ms;
	long reply_timeout_ms;
	long keepalive_ms;
	char *ca_file;
	bool tls;
	char *server_name;
	bool resume;
};

static const struct rg_option cli_options[] = {
	RG_OPTION_STRING("host", struct cli, host, "127.0.0.1", NULL, "gateway address"),
	RG_OPTION_INT("port", struct cli, port, 7777, 1, 65535, "gateway port"),
	RG_OPTION_INT("wait-ms", struct cli, wait_ms, 0, 0, 86400000,
		      "after the last command, keep printing pushes this long"),
	RG_OPTION_INT("reply-timeout-ms", struct cli, reply_timeout_ms, 10000, 1, 86400000,
		      "give up waiting for a reply after this long"),
	RG_OPTION_INT("keepalive-ms", struct cli, keepalive_ms, 30000, 0, 86400000,
		      "send a silent ping after this long without a request (0: never)"),
	RG_OPTION_STRING("ca-file", struct cli, ca_file, "", NULL,
			 "TLS: trust the gateway's certificate only if it chains to this PEM file"),
	RG_OPTION_BOOL("tls", struct cli, tls, false,
		       "TLS with the system's CAs (implied by --ca-file)"),
	RG_OPTION_STRING("server-name", struct cli, server_name, "", NULL,
			 "TLS: the name the certificate must have (default: --host)"),
	RG_OPTION_BOOL("resume", struct cli, resume, true,
		       "on a dropped connection, dial again and resume the session"),
	{ 0 },
};

/* ---- the connection ---------------------------------------------------- */

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	int fd = -1, err;

	err = getaddrinfo(host, port, &hints, &res);
	if (err != 0) {
		fprintf(stderr, "ringgate-cli: %s:%s: %s\n", host, port, gai_strerror(err));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		fprintf(stderr, "ringgate-cli: cannot connect to %s:%s: %s\n", host, port,
			strerror(errno));
	freeaddrinfo(res);
	return fd;
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send msg as one varint-length-delimited frame. */
static int send_message(struct cli *cli, const Ringgate__Client__ClientMessage *msg)
{
	uint8_t frame[NET_VARINT_MAX + LINE_MAX_BYTES * 2];
	size_t body_len = ringgate__client__client_message__get_packed_size(msg);
	size_t hdr_len;

	if (body_len > sizeof(frame) - NET_VARINT_MAX)
		return -EMSGSIZE;
	hdr_len = net_varint_encode(body_len, frame);
	ringgate__client__client_message__pack(msg, frame + hdr_len);
	if (cli->ssl)
		return cli_tls_write(cli->ssl, frame, hdr_len + body_len);
	return write_all(cli->fd, frame, hdr_len + body_len);
}

/* Give msg the next seq, send it, and wait for its reply (unless silent). */
static void send_request(struct cli *cli, Ringgate__Client__ClientMessage *msg, bool silent)
{
	int err;

	msg->seq = ++cli->next_seq;
	if (msg->seq == 0)
		msg->seq = cli->next_seq = 1;
	err = send_message(cli, msg);
	if (err < 0) {
		printf("! send failed: %s\n", strerror(-err));
		cli->server_closed = true;
		return;
	}
	cli->last_request_ms = rg_now_ms();
	if (silent) {
		cli->keepalive_seq = msg->seq;
	} else {
		cli->awaiting_seq = msg->seq;
		cli->awaiting_deadline_ms = cli->last_request_ms + (uint64_t)cli->reply_timeout_ms;
	}
}

/* Keep tok as the session's newest resume token. */
static void keep_token(struct cli *cli, const Ringgate__Client__ResumeToken *tok)
{
	if (!tok || tok->token.len == 0 || tok->token.len > sizeof(cli->token))
		return;
	memcpy(cli->token, tok->token.data, tok->token.len);
	cli->token_len = tok->token.len;
	cli->grace_ms = tok->grace_ms;
}

/* Note what a resume needs from m: its msg_no and any token in it. */
static void note_session(struct cli *cli, const Ringgate__Client__ServerMessage *m)
{
	if (m->msg_no != 0)
		cli->last_msg_no = m->msg_no;
	switch (m->body_case) {
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LOGIN:
		keep_token(cli, m->login->resume);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_TOKEN:
		keep_token(cli, m->token);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_RESUME:
		keep_token(cli, m->resume->resume);
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LOGOUT:
		cli->token_len = 0; /* the session is over */
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_KICKED:
		cli->kicked = true;
		break;
	default:
		break;
	}
}

/* The replay is over: a request awaited at the drop whose answer was not
 * in it, nor pending, never reached the game server. */
static void lost_request_done(struct cli *cli)
{
	if (cli->lost_seq)
		printf("! seq %u was lost with the connection: not applied\n", cli->lost_seq);
	cli->lost_seq = 0;
}

/* The answer to our Resume: on success, keep waiting for a request the
 * game server still works on, or see whether the replay answers it. */
static void resumed(struct cli *cli, const Ringgate__Client__ServerMessage *m)
{
	const Ringgate__Client__ResumeReply *r = m->resume;

	cli->resume_seq = 0;
	cli->awaiting_seq = 0;
	cli->resume_state = RESUME_DONE;
	if (m->body_case != RINGGATE__CLIENT__SERVER_MESSAGE__BODY_RESUME) {
		Ringgate__Client__ErrorCode code = m->body_case ==
			RINGGATE__CLIENT__SERVER_MESSAGE__BODY_ERROR ? m->error->code : 0;

		if (code == RINGGATE__CLIENT__ERROR_CODE__RESUME_EXPIRED ||
		    code == RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST ||
		    code == RINGGATE__CLIENT__ERROR_CODE__ALREADY_LOGGED_IN ||
		    code == RINGGATE__CLIENT__ERROR_CODE__ERROR_NONE) {
			printf("! resume failed; log in again\n");
			cli->token_len = 0;
			cli->lost_seq = 0;
		} else {
			cli->resume_state = RESUME_RETRY; /* not done: the token holds */
		}
		return;
	}
	printf("! resumed, %u messages replayed\n", r->replayed);
	for (size_t i = 0; i < r->n_pending && cli->lost_seq; i++) {
		if (r->pending[i] == cli->lost_seq) {
			/* Its answer comes later: wait for it as before. */
			cli->awaiting_seq = cli->lost_seq;
			cli->awaiting_deadline_ms = rg_now_ms() + (uint64_t)cli->reply_timeout_ms;
			cli->lost_seq = 0;
		}
	}
	cli->replay_left = r->replayed;
	if (cli->replay_left == 0)
		lost_request_done(cli);
}

static void handle_message(struct cli *cli, const Ringgate__Client__ServerMessage *m)
{
	note_session(cli, m);
	if (m->body_case == RINGGATE__CLIENT__SERVER_MESSAGE__BODY_TOKEN)
		return; /* kept; nothing to show */
	if (m->seq != 0 && m->seq == cli->keepalive_seq) {
		cli->keepalive_seq = 0;
		if (m->body_case == RINGGATE__CLIENT__SERVER_MESSAGE__BODY_PONG)
			return;
	}
	cli_print_message(m, rg_now_ms());
	if (m->seq != 0 && m->seq == cli->resume_seq) {
		resumed(cli, m);
		return;
	}
	if (m->seq != 0 && m->seq == cli->awaiting_seq)
		cli->awaiting_seq = 0;
	if (m->seq != 0 && m->seq == cli->lost_seq)
		cli->lost_seq = 0; /* answered in the replay */
	if (m->msg_no != 0 && cli->replay_left > 0 && --cli->replay_left == 0)
		lost_request_done(cli);
}

/* recv, or SSL_read over TLS: bytes, 0 at the server's close, or -errno
 * (-EAGAIN / -EINTR: nothing this time). */
static long read_some(struct cli *cli, void *buf, size_t len)
{
	ssize_t n;

	if (cli->ssl)
		return cli_tls_read(cli->ssl, buf, len);
	n = recv(cli->fd, buf, len, 0);
	return n < 0 ? -errno : n;
}

/* Read what the socket has and handle every complete frame. */
static void read_socket(struct cli *cli)
{
	long n = read_some(cli, cli->recv_buf + cli->recv_len, sizeof(cli->recv_buf) - cli->recv_len);
	size_t used = 0;

	if (n == -EINTR || n == -EAGAIN)
		return;
	if (n <= 0) {
		printf("! connection closed by the server%s%s\n", n < 0 ? ": " : "",
		       n < 0 ? strerror((int)-n) : "");
		cli->server_closed = true;
		return;
	}
	cli->recv_len += (size_t)n;
	for (;;) {
		size_t hdr_len, body_len;
		int rc = net_frame_parse(cli->recv_buf + used, cli->recv_len - used, MAX_FRAME,
					 &hdr_len, &body_len);
		Ringgate__Client__ServerMessage *m;

		if (rc < 0) {
			printf("! bad frame from the server: %s\n", net_strerror(rc));
			cli->server_closed = true;
			return;
		}
		if (rc == 0 || cli->recv_len - used < hdr_len + body_len)
			break;
		m = ringgate__client__server_message__unpack(NULL, body_len,
							    cli->recv_buf + used + hdr_len);
		if (m) {
			handle_message(cli, m);
			ringgate__client__server_message__free_unpacked(m, NULL);
		} else {
			printf("! undecodable ServerMessage (%zu bytes) ignored\n", body_len);
		}
		used += hdr_len + body_len;
	}
	memmove(cli->recv_buf, cli->recv_buf + used, cli->recv_len - used);
	cli->recv_len -= used;
	/* TLS: a whole record was decrypted, the rest of it waits in the SSL
	 * and poll() will not report it. */
	if (cli->ssl && cli_tls_pending(cli->ssl) && !cli->server_closed)
		read_socket(cli);
}

/* ---- commands ---------------------------------------------------------- */

static void print_help(void)
{
	printf("! commands: login NAME PASSWORD | move X Y [ZONE] | chat TEXT... | earn N | ping |\n"
	       "!           logout | wait MS | help | quit\n");
}

static bool parse_float(const char *text, float *out)
{
	char *end;
	float v;

	if (!text)
		return false;
	errno = 0;
	v = strtof(text, &end);
	if (errno || end == text || *end || !isfinite(v))
		return false;
	*out = v;
	return true;
}

static bool parse_ulong(const char *text, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!text || *text == '-')
		return false;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || end == text || *end || v > max)
		return false;
	*out = v;
	return true;
}

/* Run one command line. Returns false for quit. wait_until_ms is set by
 * the wait command. */
static bool run_command(struct cli *cli, char *line, uint64_t *wait_until_ms /* OUT */)
{
	Ringgate__Client__ClientMessage msg = RINGGATE__CLIENT__CLIENT_MESSAGE__INIT;
	char *line_end = line + strlen(line);
	char *verb = strtok(line, " \t");
	char *arg1, *arg2;

	if (!verb || verb[0] == '#')
		return true;
	if (strcmp(verb, "chat") == 0) {
		/* Everything after the verb, spaces included, is the text. */
		Ringgate__Client__ChatRequest chat = RINGGATE__CLIENT__CHAT_REQUEST__INIT;
		char *text = verb + strlen(verb);

		if (text < line_end)
			text++; /* past the delimiter strtok replaced */
		text += strspn(text, " \t");
		chat.text = text;
		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_CHAT;
		msg.chat = &chat;
		send_request(cli, &msg, false);
		return true;
	}
	arg1 = strtok(NULL, " \t");
	arg2 = strtok(NULL, " \t");
	if (strcmp(verb, "login") == 0 && arg1 && arg2) {
		Ringgate__Client__LoginRequest login = RINGGATE__CLIENT__LOGIN_REQUEST__INIT;

		login.name = arg1;
		login.password.data = (uint8_t *)arg2;
		login.password.len = strlen(arg2);
		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN;
		msg.login = &login;
		send_request(cli, &msg, false);
	} else if (strcmp(verb, "move") == 0) {
		Ringgate__Client__MoveRequest move = RINGGATE__CLIENT__MOVE_REQUEST__INIT;
		char *arg3 = strtok(NULL, " \t");
		unsigned long zone = 0;

		if (!parse_float(arg1, &move.x) || !parse_float(arg2, &move.y) ||
		    (arg3 && !parse_ulong(arg3, UINT32_MAX, &zone))) {
			printf("! usage: move X Y [ZONE] (numbers; ZONE: travel there)\n");
			return true;
		}
		move.zone = (uint32_t)zone;
		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_MOVE;
		msg.move = &move;
		send_request(cli, &msg, false);
	} else if (strcmp(verb, "earn") == 0) {
		Ringgate__Client__EarnRequest earn = RINGGATE__CLIENT__EARN_REQUEST__INIT;
		unsigned long amount;

		if (!parse_ulong(arg1, UINT32_MAX, &amount)) {
			printf("! usage: earn N (a whole number)\n");
			return true;
		}
		earn.amount = (uint32_t)amount;
		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_EARN;
		msg.earn = &earn;
		send_request(cli, &msg, false);
	} else if (strcmp(verb, "ping") == 0) {
		Ringgate__Client__PingRequest ping = RINGGATE__CLIENT__PING_REQUEST__INIT;

		ping.client_time = rg_now_ms();
		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_PING;
		msg.ping = &ping;
		send_request(cli, &msg, false);
	} else if (strcmp(verb, "logout") == 0) {
		Ringgate__Client__LogoutRequest logout = RINGGATE__CLIENT__LOGOUT_REQUEST__INIT;

		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGOUT;
		msg.logout = &logout;
		send_request(cli, &msg, false);
	} else if (strcmp(verb, "wait") == 0) {
		unsigned long ms;

		if (!parse_ulong(arg1, 3600000, &ms)) {
			printf("! usage: wait MS\n");
			return true;
		}
		*wait_until_ms = rg_now_ms() + ms;
	} else if (strcmp(verb, "quit") == 0 || strcmp(verb, "exit") == 0) {
		return false;
	} else if (strcmp(verb, "help") == 0) {
		print_help();
	} else {
		printf("! unknown or incomplete command \"%s\"; try help\n", verb);
	}
	return true;
}

/* Take one complete line out of the line buffer into out; false if none. */
static bool next_line(struct cli *cli, char *out, size_t out_size)
{
	char *nl = memchr(cli->line_buf, '\n', cli->line_len);
	size_t len;

	if (!nl) {
		if (cli->line_len == sizeof(cli->line_buf) || (cli->stdin_done && cli->line_len)) {
			/* An over-long or unterminated last line: take it whole. */
			nl = cli->line_buf + cli->line_len;
		} else {
			return false;
		}
	}
	len = (size_t)(nl - cli->line_buf);
	if (len >= out_size)
		len = out_size - 1;
	memcpy(out, cli->line_buf, len);
	out[len] = '\0';
	if (len && out[len - 1] == '\r')
		out[len - 1] = '\0';
	if (nl < cli->line_buf + cli->line_len)
		nl++;
	cli->line_len -= (size_t)(nl - cli->line_buf);
	memmove(cli->line_buf, nl, cli->line_len);
	return true;
}

static void read_stdin(struct cli *cli)
{
	ssize_t n = read(STDIN_FILENO, cli->line_buf + cli->line_len,
			 sizeof(cli->line_buf) - cli->line_len);

	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0)
		cli->stdin_done = true;
	else
		cli->line_len += (size_t)n;
}

/* ---- the loop ---------------------------------------------------------- */

static int ms_until(uint64_t when, uint64_t now)
{
	if (when <= now)
		return 0;
	return when - now > 60000 ? 60000 : (int)(when - now);
}

/* Dial the gateway, and speak TLS on the connection when asked (the same
 * CA and name on every dial, a resume's included). 0, or -1 after saying
 * why. */
static int connect_gateway(struct cli *cli)
{
	cli->fd = dial(cli->host, cli->port_text);
	if (cli->fd < 0)
		return -1;
	if (cli->ca_file[0] || cli->tls) {
		cli->ssl = cli_tls_connect(cli->fd, cli->ca_file,
					   cli->server_name[0] ? cli->server_name : cli->host);
		if (!cli->ssl) {
			close(cli->fd);
			cli->fd = -1;
			return -1;
		}
	}
	return 0;
}

/* Close the connection (TLS's close_notify first). */
static void disconnect_gateway(struct cli *cli)
{
	if (cli->ssl)
		cli_tls_close(cli->ssl);
	cli->ssl = NULL;
	close(cli->fd);
	cli->fd = -1;
}

/*
 * The connection dropped: dial the gateway again and ask for the session
 * back, until the answer is final or the grace period is over (a gateway
 * still without its game server link answers SERVICE_UNAVAILABLE: try
 * again). Returns false when there is nothing to resume or it could not be
 * asked in time; true when connected (resumed, or told to log in).
 */
static bool resume_session(struct cli *cli)
{
	uint64_t deadline = rg_now_ms() + (cli->grace_ms ? cli->grace_ms : DEFAULT_GRACE_MS);
	Ringgate__Client__ClientMessage msg = RINGGATE__CLIENT__CLIENT_MESSAGE__INIT;
	Ringgate__Client__ResumeRequest req = RINGGATE__CLIENT__RESUME_REQUEST__INIT;
	struct timespec pause = { .tv_nsec = REDIAL_MS * 1000000L };

	if (!cli->resume || cli->kicked || cli->token_len == 0)
		return false;
	printf("! connection lost; resuming the session after message %llu\n",
	       (unsigned long long)cli->last_msg_no);
	disconnect_gateway(cli);
	cli->lost_seq = cli->awaiting_seq;
	cli->replay_left = 0;
	for (;;) {
		if (cli->fd < 0 && connect_gateway(cli) == 0) {
			cli->recv_len = 0;
			cli->server_closed = false;
		}
		if (cli->fd >= 0) {
			req.token.data = cli->token;
			req.token.len = cli->token_len;
			req.last_received = cli->last_msg_no;
			msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_RESUME;
			msg.resume = &req;
			cli->resume_state = RESUME_WAITING;
			send_request(cli, &msg, false);
			cli->resume_seq = msg.seq;
			while (cli->resume_state == RESUME_WAITING && !cli->server_closed &&
			       rg_now_ms() < deadline) {
				struct pollfd pfd = { cli->fd, POLLIN, 0 };

				if (poll(&pfd, 1, ms_until(deadline, rg_now_ms())) > 0)
					read_socket(cli);
			}
			if (cli->resume_state == RESUME_DONE)
				return true;
			if (cli->server_closed)
				disconnect_gateway(cli);
		}
		if (rg_now_ms() >= deadline) {
			printf("! could not resume within the grace period\n");
			cli->resume_seq = 0;
			cli->awaiting_seq = 0;
			return cli->fd >= 0;
		}
		nanosleep(&pause, NULL);
	}
}

/* Serve the socket (and stdin, when a command may be read) until quit,
 * the end of input, or the connection ends. */
static void run(struct cli *cli)
{
	uint64_t wait_until_ms = 0;
	bool prompted = false;

	for (;;) {
		uint64_t now = rg_now_ms();
		bool may_read_command = !cli->awaiting_seq && now >= wait_until_ms;
		char line[LINE_MAX_BYTES + 1];
		struct pollfd fds[2] = { { cli->fd, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 } };
		uint64_t wake;
		int nfds = 1, rc;

		if (cli->server_closed && !resume_session(cli))
			return;
		if (cli->awaiting_seq && now >= cli->awaiting_deadline_ms) {
			printf("! no reply to seq %u within %ld ms\n", cli->awaiting_seq,
			       cli->reply_timeout_ms);
			cli->awaiting_seq = 0;
			continue;
		}
		if (may_read_command && next_line(cli, line, sizeof(line))) {
			prompted = false;
			if (!run_command(cli, line, &wait_until_ms))
				return;
			continue;
		}
		if (may_read_command && cli->stdin_done)
			return;
		if (cli->keepalive_ms > 0 && !cli->keepalive_seq &&
		    now - cli->last_request_ms >= (uint64_t)cli->keepalive_ms) {
			Ringgate__Client__ClientMessage msg = RINGGATE__CLIENT__CLIENT_MESSAGE__INIT;
			Ringgate__Client__PingRequest ping = RINGGATE__CLIENT__PING_REQUEST__INIT;

			ping.client_time = now;
			msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_PING;
			msg.ping = &ping;
			send_request(cli, &msg, true);
			continue;
		}
		if (may_read_command && cli->interactive && !prompted) {
			printf("> ");
			fflush(stdout);
			prompted = true;
		}

		if (may_read_command && !cli->stdin_done)
			nfds = 2;
		wake = cli->last_request_ms + (uint64_t)cli->keepalive_ms;
		if (cli->keepalive_ms <= 0)
			wake = now + 60000;
		if (cli->awaiting_seq && cli->awaiting_deadline_ms < wake)
			wake = cli->awaiting_deadline_ms;
		if (wait_until_ms > now && wait_until_ms < wake)
			wake = wait_until_ms;
		rc = poll(fds, (nfds_t)nfds, ms_until(wake, now));
		if (rc < 0 && errno != EINTR) {
			printf("! poll: %s\n", strerror(errno));
			return;
		}
		if (rc <= 0)
			continue;
		if (fds[0].revents) {
			if (prompted)
				printf("\r");
			read_socket(cli);
			if (prompted)
				prompted = false;
		}
		if (nfds == 2 && fds[1].revents)
			read_stdin(cli);
	}
}

/* After the input ends: keep printing what arrives for wait_ms. */
static void linger(struct cli *cli, long wait_ms)
{
	uint64_t end = rg_now_ms() + (uint64_t)wait_ms;

	for (;;) {
		uint64_t now = rg_now_ms();
		struct pollfd pfd = { cli->fd, POLLIN, 0 };

		if (cli->server_closed && !resume_session(cli))
			return;
		if (now >= end)
			return;
		if (poll(&pfd, 1, ms_until(end, now)) > 0)
			read_socket(cli);
	}
}

int main(int argc, char **argv)
{
	struct cli *cli = calloc(1, sizeof(*cli));
	int rc;

	if (!cli) {
		fprintf(stderr, "ringgate-cli: out of memory\n");
		return 1;
	}
	rc = rg_options_parse(cli_options, cli, "cli",
			      "usage: ringgate-cli [--host H] [--port P] [--ca-file F | --tls] [--wait-ms N] < commands\n"
			      "commands: login NAME PASSWORD, move X Y [ZONE], chat TEXT..., earn N, ping, logout,\n"
			      "          wait MS, help, quit",
			      argc, argv);
	if (rc != 0) {
		free(cli);
		return rc > 0 ? 0 : 2;
	}
	/* Script output is read line by line by other programs. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(cli->port_text, sizeof(cli->port_text), "%ld", cli->port);
	if (connect_gateway(cli) < 0) {
		free(cli);
		return 1;
	}
	cli->interactive = isatty(STDIN_FILENO);
	cli->last_request_ms = rg_now_ms();
	if (cli->interactive)
		printf("! connected to %s:%ld; type help for commands\n", cli->host, cli->port);

	run(cli);
	linger(cli, cli->wait_ms);
	rc = cli->server_closed ? 1 : 0;
	disconnect_gateway(cli);
	free(cli);
	return rc;
}
