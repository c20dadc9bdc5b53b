/*
 * rg/signals.h: the shutdown signals of a ringgate process.
 *
 * The main thread blocks SIGINT, SIGTERM and SIGHUP (reload) before
 * creating any thread, so
 * every thread inherits the mask and the signals stay pending until the
 * main thread collects them with sigwait: no async handler, no flag
 * polling. SIGPIPE is ignored so a peer closing a socket never kills us
 * (libnet sends with MSG_NOSIGNAL anyway; this also covers stderr pipes).
 */
#ifndef RG_SIGNALS_H
#define RG_SIGNALS_H

/* Block SIGINT/SIGTERM and ignore SIGPIPE. Call first in main, before any
 * thread exists. */
void rg_signals_block(void);

/* Wait for SIGINT or SIGTERM and return its number. Main thread, after
 * rg_signals_block(). SIGHUP is blocked too and stays pending: a process
 * with nothing to reload ignores it. */
int rg_signals_wait(void);

/* As rg_signals_wait, but each SIGHUP meanwhile runs reload(arg) (on the
 * main thread) and the wait goes on. */
int rg_signals_wait_reload(void (*reload)(void *arg), void *arg);

#endif /* RG_SIGNALS_H */
