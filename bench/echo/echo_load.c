/*
 * echo_load: the one load generator of the echo benchmark, used unchanged
 * against every server. Single-threaded epoll (level-triggered), C, no
 * libnet code, so it loads each server the same way.
 *
 * It opens --conns connections (bound to 127.0.0.1 .. 127.0.0.K source
 * addresses when there are many, so ports and TIME_WAIT entries spread),
 * then sends frames of --size body bytes:
 *   - closed loop (default): --inflight frames per connection at start, one
 *     more each time one comes back;
 *   - open loop (--rate R): R frames per second in total, frame k due at
 *     start + k/R, handed round-robin to connections with fewer than
 *     --max-inflight outstanding. Latency runs from the due time, not the
 *     send time, so a server that falls behind shows it in the tail
 *     (no coordinated omission).
 * Every echoed byte is checked against what was sent (frames carry a
 * pattern derived from connection and sequence number), and the round trip
 * of each frame goes into a log-bucket histogram.
 *
 * Phases: connect, warm-up (--warmup s, not counted), measurement
 * (--duration s), drain (no new frames; every outstanding one must come
 * back within 5 s). "mark start" and "mark end" are printed on stdout (and
 * flushed) as the measurement window opens and closes, so a driver can
 * sample the server's CPU time at exactly those moments. The last stdout
 * line is one JSON object with every figure. Exit status 0 only if every
 * frame came back intact and no connection failed.
 */
#define _GNU_SOURCE
#include "frame.h"
#include "histogram.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTING 256     /* dials in progress at once             */
#define DRAIN_NS 5000000000ull /* how long outstanding frames may take  */

enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_OPEN, CONN_DEAD };

struct conn {
	int fd;
	unsigned index;
	enum conn_state state;
	bool dirty;               /* on the flush list                       */
	bool want_out;            /* EPOLLOUT is watched: the kernel was full */
	uint32_t sent, received;  /* frames; sent - received are in flight   */
	uint64_t *due;            /* ring: due time of frame seq % ring_size */
	uint8_t *out;             /* frames not yet taken by the kernel      */
	size_t out_off, out_len, out_cap;
	uint8_t *in;              /* received bytes not yet parsed           */
	size_t in_len, in_cap;
};

struct options {
	const char *host;
	int port;
	unsigned conns, size, inflight, max_inflight, sources;
	double duration, warmup, rate;
};

struct load {
	struct options opt;
	int ep;
	struct conn *conns;
	struct conn **dirty;      /* connections with output to flush         */
	unsigned dirty_count;
	unsigned ring_size;
	size_t frame_len;         /* header + body                            */
	uint8_t header[BENCH_VARINT_MAX];
	size_t header_len;
	unsigned open, failed;
	bool sending;             /* warm-up or measurement: new frames go out */
	uint64_t start_ns, measure_ns, end_ns;
	uint64_t next_frame;      /* open loop: frames handed out so far      */
	unsigned rr;              /* open loop: next connection to try        */
	/* Counters over the whole run (consistency) and the window (speed). */
	uint64_t total_sent, total_received, bytes_sent, bytes_received;
	uint64_t window_frames, corrupt, unanswered;
	struct hist latency;
};

/* The body byte i of frame seq on connection index: easy to recompute. */
static inline uint8_t pattern(unsigned index, uint32_t seq, size_t i)
{
	return (uint8_t)(seq * 131u + index * 7u + i * 13u + (i >> 8));
}

static void conn_fail(struct load *l, struct conn *c, const char *why, int err)
{
	if (c->state == CONN_DEAD)
		return;
	fprintf(stderr, "echo_load: connection %u: %s%s%s\n", c->index, why,
		err ? ": " : "", err ? strerror(err) : "");
	if (c->state == CONN_OPEN)
		l->open--;
	l->failed++;
	l->unanswered += c->sent - c->received;
	c->state = CONN_DEAD;
	close(c->fd);
}

static void mark_dirty(struct load *l, struct conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		l->dirty[l->dirty_count++] = c;
	}
}

/* Append one frame due at due_ns to c's output. */
static void queue_frame(struct load *l, struct conn *c, uint64_t due_ns)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + l->frame_len > c->out_cap) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	uint8_t *p = c->out + c->out_len;
	memcpy(p, l->header, l->header_len);
	p += l->header_len;
	for (size_t i = 0; i < l->opt.size; i++)
		p[i] = pattern(c->index, c->sent, i);
	c->out_len += l->frame_len;
	c->due[c->sent % l->ring_size] = due_ns;
	c->sent++;
	l->total_sent++;
	mark_dirty(l, c);
}

static void conn_watch(struct load *l, struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		conn_fail(l, c, "epoll_ctl", errno);
}

/* Hand c's output to the kernel; wait for EPOLLOUT if it takes only part. */
static void conn_flush(struct load *l, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN) {
				conn_fail(l, c, "send", errno);
			} else if (!c->want_out) {
				c->want_out = true;
				conn_watch(l, c, EPOLLIN | EPOLLOUT);
			}
			return;
		}
		l->bytes_sent += (uint64_t)n;
		c->out_off += (size_t)n;
	}
	if (c->want_out) {
		c->want_out = false;
		conn_watch(l, c, EPOLLIN);
	}
}

static void flush_dirty(struct load *l)
{
	for (unsigned i = 0; i < l->dirty_count; i++) {
		struct conn *c = l->dirty[i];
		c->dirty = false;
		if (c->state == CONN_OPEN)
			conn_flush(l, c);
	}
	l->dirty_count = 0;
}

/* Check one echoed frame body against what was sent as frame `received`. */
static bool frame_intact(const struct load *l, const struct conn *c, const uint8_t *body,
			 size_t len)
{
	if (len != l->opt.size)
		return false;
	for (size_t i = 0; i < len; i++)
		if (body[i] != pattern(c->index, c->received, i))
			return false;
	return true;
}

static void conn_read(struct load *l, struct conn *c, uint64_t now)
{
	ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n == 0) {
		conn_fail(l, c, "closed by the server", 0);
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN)
			conn_fail(l, c, "recv", errno);
		return;
	}
	l->bytes_received += (uint64_t)n;
	c->in_len += (size_t)n;
	bool in_window = now >= l->measure_ns && now < l->end_ns;

	size_t done = 0, hdr, body;
	int rc;
	while ((rc = bench_frame_parse(c->in + done, c->in_len - done, l->opt.size, &hdr, &body)) == 1
	       && done + hdr + body <= c->in_len) {
		if (c->received == c->sent || !frame_intact(l, c, c->in + done + hdr, body)) {
			l->corrupt++;
			conn_fail(l, c, "echoed frame differs from the one sent", 0);
			return;
		}
		uint64_t due = c->due[c->received % l->ring_size];
		c->received++;
		l->total_received++;
		if (in_window) {
			l->window_frames++;
			hist_record(&l->latency, now > due ? now - due : 0);
		}
		if (l->sending && l->opt.rate == 0)
			queue_frame(l, c, now);
		done += hdr + body;
	}
	if (rc < 0) {
		l->corrupt++;
		conn_fail(l, c, "bad frame header from the server", 0);
		return;
	}
	memmove(c->in, c->in + done, c->in_len - done);
	c->in_len -= done;
}

/* Start the next dial; the source address cycles over opt.sources. */
static void conn_dial(struct load *l, struct conn *c)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)l->opt.port) };
	int one = 1;
	inet_pton(AF_INET, l->opt.host, &dst.sin_addr);
	src.sin_addr.s_addr = htonl(0x7f000001u + c->index % l->opt.sources);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->state = CONN_CONNECTING;
	if (c->fd < 0) {
		fprintf(stderr, "echo_load: socket: %s\n", strerror(errno));
		c->state = CONN_DEAD;
		l->failed++;
		return;
	}
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Let connect() pick the port per destination, not bind() globally. */
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (l->opt.sources > 1 && bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
		conn_fail(l, c, "bind", errno);
	else if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS)
		conn_fail(l, c, "connect", errno);
	else if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		conn_fail(l, c, "epoll_ctl", errno);
}

static void conn_connected(struct load *l, struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		conn_fail(l, c, "connect", err ? err : errno);
		return;
	}
	c->state = CONN_OPEN;
	l->open++;
	conn_watch(l, c, EPOLLIN);
}

static void dispatch(struct load *l, struct epoll_event *ev, uint64_t now)
{
	struct conn *c = ev->data.ptr;
	if (c->state == CONN_CONNECTING) {
		conn_connected(l, c);
		return;
	}
	if (c->state != CONN_OPEN)
		return;
	if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_read(l, c, now);
	if (c->state == CONN_OPEN && (ev->events & EPOLLOUT))
		conn_flush(l, c);
}

/* Dial every connection, at most MAX_CONNECTING at a time. 0 or -1. */
static int connect_all(struct load *l)
{
	struct epoll_event events[256];
	unsigned next = 0;
	uint64_t give_up = bench_now_ns() + 60000000000ull;
	while (l->open + l->failed < l->opt.conns) {
		if (bench_now_ns() > give_up) {
			fprintf(stderr, "echo_load: connecting took over 60 s\n");
			return -1;
		}
		while (next < l->opt.conns && next - l->open - l->failed < MAX_CONNECTING)
			conn_dial(l, &l->conns[next++]);
		int n = epoll_wait(l->ep, events, 256, 1000);
		if (n < 0 && errno != EINTR)
			return -1;
		for (int i = 0; i < n; i++)
			dispatch(l, &events[i], bench_now_ns());
	}
	return l->failed ? -1 : 0;
}

/*
 * Open loop: hand out every frame that is due by now. Returns false when a
 * due frame found every connection full (it waits for a reply, not a timer).
 */
static bool send_due(struct load *l, uint64_t now)
{
	double interval = 1e9 / l->opt.rate;
	for (;;) {
		uint64_t due = l->start_ns + (uint64_t)((double)l->next_frame * interval);
		if (due > now)
			return true;
		unsigned tried = 0;
		struct conn *c;
		do {
			c = &l->conns[l->rr++ % l->opt.conns];
		} while ((c->state != CONN_OPEN || c->sent - c->received >= l->opt.max_inflight)
			 && ++tried < l->opt.conns);
		if (tried == l->opt.conns)
			return false; /* all full: the frame stays due and waits */
		queue_frame(l, c, due);
		l->next_frame++;
	}
}

static uint64_t outstanding(const struct load *l)
{
	return l->total_sent - l->total_received - l->unanswered;
}

static void say(const char *line)
{
	fputs(line, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

static void run(struct load *l)
{
	struct epoll_event events[256];
	uint64_t now = bench_now_ns();
	l->start_ns = now;
	l->measure_ns = now + (uint64_t)(l->opt.warmup * 1e9);
	l->end_ns = l->measure_ns + (uint64_t)(l->opt.duration * 1e9);
	bool marked_start = false;
	l->sending = true;
	if (l->opt.rate == 0)
		for (unsigned i = 0; i < l->opt.conns; i++)
			for (unsigned k = 0; k < l->opt.inflight; k++)
				queue_frame(l, &l->conns[i], now);
	uint64_t drain_deadline = 0;
	for (;;) {
		if (!marked_start && now >= l->measure_ns) {
			marked_start = true;
			l->measure_ns = now;
			say("mark start");
		}
		if (l->sending && now >= l->end_ns) {
			l->sending = false;
			l->end_ns = now;
			drain_deadline = now + DRAIN_NS;
			say("mark end");
		}
		bool stalled = false;
		if (l->sending && l->opt.rate > 0)
			stalled = !send_due(l, now);
		flush_dirty(l);
		if (!l->sending && (outstanding(l) == 0 || now >= drain_deadline))
			break;

		/* Sleep until the next thing that is due. */
		uint64_t wake = l->sending ? (marked_start ? l->end_ns : l->measure_ns) : drain_deadline;
		if (l->sending && l->opt.rate > 0 && !stalled) {
			uint64_t due = l->start_ns + (uint64_t)((double)l->next_frame * 1e9 / l->opt.rate);
			if (due < wake)
				wake = due;
		}
		uint64_t wait_ns = wake > now ? wake - now : 0;
		struct timespec ts = { .tv_sec = (time_t)(wait_ns / 1000000000u),
				       .tv_nsec = (long)(wait_ns % 1000000000u) };
		int n = epoll_pwait2(l->ep, events, 256, &ts, NULL);
		now = bench_now_ns();
		for (int i = 0; i < n; i++)
			dispatch(l, &events[i], now);
	}
	l->unanswered += outstanding(l);
}

static void report(const struct load *l)
{
	double window_s = (double)(l->end_ns - l->measure_ns) / 1e9;
	const struct hist *h = &l->latency;
	bool ok = l->failed == 0 && l->corrupt == 0 && l->unanswered == 0
		  && l->total_sent == l->total_received
		  && l->bytes_sent == l->bytes_received
		  && l->bytes_sent == l->total_sent * l->frame_len;
	printf("{\"conns\":%u,\"size\":%u,\"inflight\":%u,\"rate\":%.0f,\"sources\":%u,"
	       "\"window_s\":%.6f,\"msgs\":%llu,\"msgs_per_s\":%.1f,"
	       "\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f,"
	       "\"sent\":%llu,\"received\":%llu,\"bytes_sent\":%llu,\"bytes_received\":%llu,"
	       "\"failed_conns\":%u,\"corrupt\":%llu,\"unanswered\":%llu,\"ok\":%s}\n",
	       l->opt.conns, l->opt.size, l->opt.rate > 0 ? l->opt.max_inflight : l->opt.inflight,
	       l->opt.rate, l->opt.sources, window_s, (unsigned long long)l->window_frames,
	       window_s > 0 ? (double)l->window_frames / window_s : 0.0,
	       hist_percentile(h, 50) / 1e3, hist_percentile(h, 99) / 1e3,
	       hist_percentile(h, 99.9) / 1e3, h->max / 1e3, hist_mean(h) / 1e3,
	       (unsigned long long)l->total_sent, (unsigned long long)l->total_received,
	       (unsigned long long)l->bytes_sent, (unsigned long long)l->bytes_received,
	       l->failed, (unsigned long long)l->corrupt, (unsigned long long)l->unanswered,
	       ok ? "true" : "false");
	fflush(stdout);
}

static void usage(void)
{
	fputs("usage: echo_load --port N [--host 127.0.0.1] [--conns 1] [--size 16]\n"
	      "                 [--inflight 1] [--duration 5] [--warmup 1]\n"
	      "                 [--rate MSGS_PER_S (open loop)] [--max-inflight 64]\n"
	      "                 [--sources K (127.0.0.1..K; default 1 per 1000 conns)]\n",
	      stderr);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "host", required_argument, NULL, 'h' },  { "port", required_argument, NULL, 'p' },
		{ "conns", required_argument, NULL, 'c' }, { "size", required_argument, NULL, 's' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "max-inflight", required_argument, NULL, 'm' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' }, { "rate", required_argument, NULL, 'r' },
		{ "sources", required_argument, NULL, 'S' }, { NULL, 0, NULL, 0 },
	};
	*o = (struct options){ .host = "127.0.0.1", .conns = 1, .size = 16, .inflight = 1,
			       .max_inflight = 64, .duration = 5, .warmup = 1 };
	int ch;
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'h': o->host = optarg; break;
		case 'p': o->port = atoi(optarg); break;
		case 'c': o->conns = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': o->size = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'i': o->inflight = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'm': o->max_inflight = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': o->duration = atof(optarg); break;
		case 'w': o->warmup = atof(optarg); break;
		case 'r': o->rate = atof(optarg); break;
		case 'S': o->sources = (unsigned)strtoul(optarg, NULL, 10); break;
		default: return -1;
		}
	}
	if (o->sources == 0)
		o->sources = 1 + o->conns / 1000;
	struct in_addr probe;
	if (o->port <= 0 || o->port > 65535 || o->conns == 0 || o->size == 0 || o->inflight == 0
	    || o->max_inflight == 0 || o->duration <= 0 || o->warmup < 0 || o->rate < 0
	    || o->sources > 254 || inet_pton(AF_INET, o->host, &probe) != 1 || optind != argc)
		return -1;
	return 0;
}

static int load_init(struct load *l)
{
	l->ring_size = l->opt.rate > 0 ? l->opt.max_inflight : l->opt.inflight;
	l->header_len = bench_varint_encode(l->opt.size, l->header);
	l->frame_len = l->header_len + l->opt.size;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	l->conns = calloc(l->opt.conns, sizeof(*l->conns));
	l->dirty = calloc(l->opt.conns, sizeof(*l->dirty));
	if (l->ep < 0 || !l->conns || !l->dirty)
		return -1;
	for (unsigned i = 0; i < l->opt.conns; i++) {
		struct conn *c = &l->conns[i];
		c->index = i;
		c->fd = -1;
		c->out_cap = l->ring_size * l->frame_len;
		c->in_cap = l->ring_size * l->frame_len + 4096;
		c->due = malloc(l->ring_size * sizeof(*c->due));
		c->out = malloc(c->out_cap);
		c->in = malloc(c->in_cap);
		if (!c->due || !c->out || !c->in)
			return -1;
	}
	return 0;
}

static void load_fini(struct load *l)
{
	for (unsigned i = 0; l->conns && i < l->opt.conns; i++) {
		struct conn *c = &l->conns[i];
		if (c->state == CONN_OPEN || c->state == CONN_CONNECTING)
			close(c->fd);
		free(c->due);
		free(c->out);
		free(c->in);
	}
	free(l->conns);
	free(l->dirty);
	if (l->ep >= 0)
		close(l->ep);
}

int main(int argc, char **argv)
{
	static struct load l; /* static: the histogram is 60 KB */
	signal(SIGPIPE, SIG_IGN);
	if (parse_options(argc, argv, &l.opt) < 0) {
		usage();
		return 2;
	}
	if (load_init(&l) < 0) {
		fprintf(stderr, "echo_load: out of memory or fds\n");
		load_fini(&l);
		return 1;
	}
	int status = 1;
	if (connect_all(&l) < 0) {
		fprintf(stderr, "echo_load: %u of %u connections failed\n", l.failed, l.opt.conns);
		goto out;
	}
	run(&l);
	report(&l);
	status = l.failed || l.corrupt || l.unanswered ? 1 : 0;
out:
	load_fini(&l);
	return status;
}
