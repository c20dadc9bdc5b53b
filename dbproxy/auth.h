/*
 * auth: login workers. A login looks the account up on a read connection
 * and checks the password with libsodium's crypto_pwhash_str_verify; an
 * unknown name is hashed with crypto_pwhash_str and created through the
 * writer, so the new account is durable before the login is answered.
 *
 * Why threads of their own: password hashing is deliberately slow (tens of
 * milliseconds and 64 MiB with the interactive profile), so it must never
 * run on a network loop; and reads on their own connections never wait
 * behind the writer's transactions (WAL readers see the last commit).
 *
 * Logins queue in a bounded FIFO like writes: a full queue refuses at once
 * (-EAGAIN -> DB_BUSY). Passwords are wiped from memory before done() and
 * never logged.
 */
#ifndef RG_DBPROXY_AUTH_H
#define RG_DBPROXY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "store.h"
#include "writer.h"

/* Longest password in bytes (the client contract: 1..128). */
#define RG_PASSWORD_MAX 128

/* How expensive a new password hash is. Verification reads the cost from
 * the stored hash, so switching profiles keeps old accounts working. */
enum rg_pwhash_profile {
	RG_PWHASH_INTERACTIVE,    /* libsodium's interactive limits: production */
	RG_PWHASH_MIN,            /* the smallest limits: tests and benchmarks  */
};

struct rg_login;

/* Called once per login, on a login worker or on the writer thread (when
 * the login created the account). The callee owns the login again. */
typedef void (*rg_login_done_fn)(struct rg_login *l);

struct rg_login {
	/* IN */
	char name[RG_NAME_MAX + 1];
	char password[RG_PASSWORD_MAX + 1]; /* wiped before done()            */
	uint64_t deadline_ms;     /* rg_now_ms() time; 0 = none                */
	rg_login_done_fn done;

	/* OUT, valid in done(): 0, -EACCES (wrong password), -ETIMEDOUT
	 * (deadline passed while queued), -EAGAIN (writer queue full),
	 * -ESHUTDOWN (stopping), or a database/hash failure (-EIO, -ENOMEM). */
	int result;
	bool created;             /* this login made the account               */
	struct rg_player player;

	/* private */
	struct dbp_qnode node;
	struct rg_write create;
	struct rg_auth *auth;
	bool retried;             /* lost a create race once already           */
};

struct rg_auth_config {
	const char *db_path;      /* opened read-only once per worker          */
	unsigned threads;         /* workers, >= 1                             */
	size_t queue_max;
	enum rg_pwhash_profile profile;
	struct rg_writer *writer; /* creates go through it; outlives the pool  */
};

struct rg_auth;

/* Parse "interactive" or "min". Returns 0 or -EINVAL. */
int rg_pwhash_profile_parse(const char *text, enum rg_pwhash_profile *out /* OUT */);

/*
 * Hash a password with the profile into out (RG_PWHASH_MAX bytes). Slow by
 * design: never on a network loop. Returns 0 or -ENOMEM. Any thread.
 */
int rg_pwhash(enum rg_pwhash_profile profile, const char *password,
	      char out[RG_PWHASH_MAX] /* OUT */);

/* True when password matches a hash made by rg_pwhash(). Slow. Any thread. */
bool rg_pwhash_verify(const char *hash, const char *password);

/*
 * Initialise libsodium, open one read connection per worker (so a bad path
 * fails here, not later) and start the workers. Returns 0 and sets *out, or
 * a negative errno. Any thread.
 */
int rg_auth_start(const struct rg_auth_config *cfg, struct rg_auth **out /* OUT */);

/* Queue a login. Returns 0 (done() will run once), -EAGAIN when full,
 * -ESHUTDOWN when stopping; on error the caller keeps l. Any thread. */
int rg_auth_submit(struct rg_auth *a, struct rg_login *l);

/*
 * Refuse new logins, answer the queued ones -ESHUTDOWN (no slow hashing at
 * shutdown), let the running ones finish (their account creates included),
 * join the workers, close their connections, free. Call before
 * rg_writer_stop() (logins create through the writer). Any thread except a
 * worker.
 */
void rg_auth_stop(struct rg_auth *a);

#endif /* RG_DBPROXY_AUTH_H */
