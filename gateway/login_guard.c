/*
 * login guard: the gateway's per-address login throttles.
 *
 * Why here: a login costs dbproxy a slow password hash (tens of ms, on
 * purpose), so a few hundred logins a second from anyone would starve
 * everyone's. Only the gateway knows a client's address; gamesrv and
 * dbproxy see sessions and account names. So the per-address rules live
 * here and the per-account and cluster-wide ones in dbproxy (auth.h).
 *
 * One rg_throttle keyed by the client's IP address (without the port),
 * shared by every loop (it has its own lock; logins are rare enough):
 * - attempts: --logins-per-addr-per-sec, as a burst too; past it a login
 *   is answered RATE_LIMITED at once, never forwarded;
 * - failures: after --login-failures-per-addr wrong passwords in a row from
 *   the address, each further login waits a backoff (1 s, doubling to
 *   60 s; RATE_LIMITED meanwhile); a successful login clears it;
 * - creation quota: --creates-per-addr-per-hour new accounts; past it a
 *   login is still forwarded, marked ClientRequest.no_create, so it may
 *   open an existing account but not make one (dbproxy refuses:
 *   RATE_LIMITED). The quota is spent when a LoginReply says created, so
 *   logins racing each other may overshoot it by the attempts in flight.
 * The verdicts come from gamesrv's replies (gw_guard_login_replied). A
 * client that hangs up before its login is answered is not there to see
 * the answer, so that login counts as a failure (gw_guard_login_abandoned):
 * hanging up right after a guess does not dodge the count, and a player
 * who closes the game mid-login five times in a row waits a second. A table full of addresses that
 * matter answers new addresses SERVER_BUSY rather than let them in
 * unthrottled.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <rg/clock.h>
#include <rg/log.h>

#include "gateway.h"

/* Addresses tracked at once; a key is about 50 bytes plus its buckets. */
#define GUARD_ADDRS_MAX 100000

int gw_guard_create(struct gateway *gw)
{
	const struct gw_config *cfg = &gw->cfg;
	struct rg_throttle_config tc = {
		.attempt_rate = (uint32_t)cfg->logins_per_addr_per_sec,
		.attempt_period_ms = 1000,
		.quota_rate = (uint32_t)cfg->creates_per_addr_per_hour,
		.quota_period_ms = 3600 * 1000,
		.free_failures = (uint32_t)cfg->login_failures_per_addr,
		.max_keys = GUARD_ADDRS_MAX,
	};

	return rg_throttle_create(&tc, &gw->logins);
}

void gw_guard_destroy(struct gateway *gw)
{
	rg_throttle_destroy(gw->logins);
	gw->logins = NULL;
}

/* The table has no room for another address: say so, at most once a
 * second however many logins are refused. Any thread. */
static void warn_table_full(void)
{
	static _Atomic uint64_t warned_ms;
	uint64_t now = rg_now_ms(), last = atomic_load(&warned_ms);

	if (now - last >= 1000 && atomic_compare_exchange_strong(&warned_ms, &last, now))
		RG_WARN("login guard: %d addresses tracked, all throttled (or out of memory); "
			"refusing logins from new ones (SERVER_BUSY)", GUARD_ADDRS_MAX);
}

int gw_guard_login(struct gateway *gw, const char *addr, bool *no_create,
		   Ringgate__Client__ErrorCode *code, char *text, size_t text_size)
{
	uint64_t wait_ms = 0;
	bool quota_ok = true;
	int rc = rg_throttle_attempt(gw->logins, addr, rg_now_ms(), &wait_ms, &quota_ok);

	switch (rc) {
	case 0:
		*no_create = !quota_ok;
		return 0;
	case -EAGAIN:
		*code = RINGGATE__CLIENT__ERROR_CODE__RATE_LIMITED;
		snprintf(text, text_size, "too many logins from your address; retry in %llu ms",
			 (unsigned long long)wait_ms);
		break;
	case -EBUSY:
		*code = RINGGATE__CLIENT__ERROR_CODE__RATE_LIMITED;
		snprintf(text, text_size,
			 "too many failed logins from your address; retry in %llu ms",
			 (unsigned long long)wait_ms);
		break;
	default:
		warn_table_full();
		*code = RINGGATE__CLIENT__ERROR_CODE__SERVER_BUSY;
		snprintf(text, text_size, "too many addresses logging in; retry later");
		break;
	}
	return rc;
}

void gw_guard_login_replied(struct gateway *gw, const char *addr, const uint8_t *frame,
			    size_t len)
{
	/* Logins are few: a malloc'ed decode is fine here. */
	Ringgate__Client__ServerMessage *msg =
		ringgate__client__server_message__unpack(NULL, len, frame);

	if (!msg)
		return;
	if (msg->body_case == RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LOGIN) {
		rg_throttle_succeeded(gw->logins, addr, rg_now_ms(), msg->login->created);
	} else if (msg->body_case == RINGGATE__CLIENT__SERVER_MESSAGE__BODY_ERROR &&
		   msg->error->code == RINGGATE__CLIENT__ERROR_CODE__WRONG_PASSWORD) {
		rg_throttle_failed(gw->logins, addr, rg_now_ms());
	}
	ringgate__client__server_message__free_unpacked(msg, NULL);
}

void gw_guard_login_abandoned(struct gateway *gw, const char *addr)
{
	rg_throttle_failed(gw->logins, addr, rg_now_ms());
}
