/*
 * signals.c: shutdown signals collected synchronously by the main thread
 * (see rg/signals.h for why the mask must be set before any thread).
 */
#define _POSIX_C_SOURCE 200809L
#include "rg/signals.h"

#include <pthread.h>
#include <signal.h>

static void shutdown_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
}

void rg_signals_block(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	shutdown_set(&set);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int rg_signals_wait_reload(void (*reload)(void *arg), void *arg)
{
	sigset_t set;
	int sig = 0;

	shutdown_set(&set);
	if (reload)
		sigaddset(&set, SIGHUP);
	for (;;) {
		/* sigwait only fails for an invalid set; loop for robustness. */
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			return sig;
		reload(arg);
	}
}

int rg_signals_wait(void)
{
	return rg_signals_wait_reload(NULL, NULL);
}
