/*
 * auth: login workers. A login looks the account up on a read connection
 * and checks the password with libsodium's crypto_pwhash_str_verify; an
 * unknown name is hashed with crypto_pwhash_str and created through the
 * writer, so the new account is durable before the login is answered.
 * A login that asks for the player's lease (lease.owner != 0) takes it
 * through the writer after the password check (dbp_store_take_lease), or
 * in the same write as the create, so the lease is durable before the
 * answer too.
 *
 * Why threads of their own: password hashing is deliberately slow (tens of
 * milliseconds and 64 MiB with the interactive profile), so it must never
 * run on a network loop; and reads on their own connections never wait
 * behind the writer's transactions (WAL readers see the last commit).
 *
 * Logins queue in a bounded FIFO like writes: a full queue refuses at once
 * (-EAGAIN -> DB_BUSY). So does a login that would end past its deadline:
 * the pool keeps a cautious estimate of how long a login takes (a hash is
 * tens of milliseconds, far more on busy cores), so a flood is answered
 * busy at once instead of filling the queue with work that would only
 * time out; a worker also refuses a login it could not end in time.
 * Passwords are wiped from memory before done() and never logged.
 *
 * Throttles (rg/throttle.h), since each login costs a slow hash:
 * - per account: after failures_per_account wrong passwords in a row, the
 *   account's logins are refused without a hash (-EPERM) for a backoff
 *   that doubles per further failure (1 s .. 60 s); a success clears it.
 * - account creation: at most creates_per_sec new accounts a second over
 *   the whole pool, and none for a login marked no_create (the gateway's
 *   per-address bound): refused with -EDQUOT, nothing created.
 */
#ifndef DBP_AUTH_H
#define DBP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "store.h"
#include "writer.h"

/* Longest password in bytes (the client contract: 1..128). */
#define DBP_PASSWORD_MAX 128

/* How expensive a new password hash is. Verification reads the cost from
 * the stored hash, so switching profiles keeps old accounts working. */
enum dbp_pwhash_profile {
	DBP_PWHASH_INTERACTIVE,    /* libsodium's interactive limits: production */
	DBP_PWHASH_MIN,            /* the smallest limits: tests and benchmarks  */
};

struct dbp_login;

/* Called once per login, on a login worker or on the writer thread (when
 * the login created the account). The callee owns the login again. */
typedef void (*dbp_login_done_fn)(struct dbp_login *l);

struct dbp_login {
	/* IN */
	char name[DBP_NAME_MAX + 1];
	uint8_t password[DBP_PASSWORD_MAX]; /* any bytes; wiped before done()   */
	size_t password_len;      /* 1..DBP_PASSWORD_MAX: all of it counts      */
	bool no_create;           /* an unknown name is refused, not created   */
	struct dbp_lease lease;   /* owner != 0: take the player's lease       */
	uint64_t deadline_ms;     /* rg_now_ms() time; 0 = none                */
	dbp_login_done_fn done;

	/* OUT, valid in done(): 0, -EACCES (wrong password), -ETIMEDOUT
	 * (could not end by its deadline: not run), -EAGAIN (writer queue full),
	 * -EPERM (the account is backing off after failures), -EDQUOT (a
	 * create refused by the creation bound or no_create), DBP_LEASE_HELD
	 * (the password was right but another live owner holds the lease:
	 * player is the row, player.lease_shard the holder), -ESHUTDOWN
	 * (stopping), or a database/hash failure (-EIO, -ENOMEM). */
	int result;
	bool created;             /* this login made the account               */
	struct dbp_player player; /* with a lease: player.lease_epoch is it    */

	/* private */
	struct dbp_qnode node;
	struct dbp_write write;   /* the create or the lease take             */
	struct dbp_auth *auth;
	bool retried;             /* lost a create race once already           */
};

struct dbp_auth_config {
	const struct dbp_store_config *store; /* the database; opened read-only
				     once per worker (read_only is set here) */
	unsigned threads;         /* workers, >= 1                             */
	size_t queue_max;
	enum dbp_pwhash_profile profile;
	struct dbp_writer *writer; /* creates go through it; outlives the pool  */
	unsigned creates_per_sec; /* new accounts a second, all told; 0: any   */
	unsigned failures_per_account; /* wrong passwords before a backoff; 0: none */
};

struct dbp_auth;

/* Parse "interactive" or "min". Returns 0 or -EINVAL. */
int dbp_pwhash_profile_parse(const char *text, enum dbp_pwhash_profile *out /* OUT */);

/*
 * Hash a password with the profile into out (DBP_PWHASH_MAX bytes). Slow by
 * design: never on a network loop. Returns 0 or -ENOMEM. Any thread.
 */
int dbp_pwhash(enum dbp_pwhash_profile profile, const uint8_t *password, size_t len,
	      char out[DBP_PWHASH_MAX] /* OUT */);

/* True when password[0..len) matches a hash made by dbp_pwhash(): every
 * byte counts, so a prefix never matches. Slow. Any thread. */
bool dbp_pwhash_verify(const char *hash, const uint8_t *password, size_t len);

/*
 * Initialise libsodium, open one read connection per worker (so a bad path
 * fails here, not later) and start the workers. Returns 0 and sets *out, or
 * a negative errno. Any thread.
 */
int dbp_auth_start(const struct dbp_auth_config *cfg, struct dbp_auth **out /* OUT */);

/* Queue a login. Returns 0 (done() will run once); -EAGAIN when the queue
 * is full or the login would wait in it past l->deadline_ms; -EPERM when
 * the account is backing off; -ESHUTDOWN when stopping. On error the
 * caller keeps l. Any thread. */
int dbp_auth_submit(struct dbp_auth *a, struct dbp_login *l);

/*
 * Refuse new logins, answer the queued ones -ESHUTDOWN (no slow hashing at
 * shutdown), let the running ones finish (their account creates included),
 * join the workers, close their connections, free. Call before
 * dbp_writer_stop() (logins create through the writer). Any thread except a
 * worker.
 */
void dbp_auth_stop(struct dbp_auth *a);

#endif /* DBP_AUTH_H */
