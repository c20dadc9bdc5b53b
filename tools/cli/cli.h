/*
 * ringgate-cli: a command-line game client (see main.c for its loop).
 */
#ifndef RINGGATE_CLI_H
#define RINGGATE_CLI_H

#include <stdint.h>

#include "client.pb-c.h"

/* The name of an error code ("WRONG_PASSWORD"), or "UNKNOWN". */
const char *cli_error_name(Ringgate__Client__ErrorCode code);

/* Print m as readable "< ..." lines on stdout; now_ms (the client's
 * monotonic clock) turns a Pong into a round-trip time. */
void cli_print_message(const Ringgate__Client__ServerMessage *m, uint64_t now_ms);

#endif /* RINGGATE_CLI_H */
