/*
 * rg/log.h: leveled, timestamped logs to stderr, shared by every ringgate
 * process.
 *
 * One line per call: "2026-11-23T19:02:03.123Z gamesrv[1234] INFO  text".
 * Each line is formatted into a local buffer and written with one write(2),
 * so lines from different threads never interleave (lines longer than the
 * buffer are cut and end with "..."). Callers never pass secrets
 * (passwords, hashes) to it: the logger cannot tell them apart.
 */
#ifndef RG_LOG_H
#define RG_LOG_H

#include <stdbool.h>

/* Lets the compiler check format strings against their arguments. */
#if defined(__GNUC__)
#define RG_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define RG_PRINTF(fmt_index, first_arg)
#endif

enum rg_log_level { RG_LOG_DEBUG, RG_LOG_INFO, RG_LOG_WARN, RG_LOG_ERROR };

/*
 * Name the process in every line and drop lines below min_level. Call once
 * in main before starting threads; before it, lines carry "?" and the
 * level is INFO. process_name must outlive the process (a literal).
 */
void rg_log_init(const char *process_name, enum rg_log_level min_level);

/* True when a line at level would be written: guard costly arguments. */
bool rg_log_enabled(enum rg_log_level level);

/* Write one line at level. printf format; no trailing newline needed. Any thread. */
void rg_log(enum rg_log_level level, const char *fmt, ...) RG_PRINTF(2, 3);

#define RG_DEBUG(...) rg_log(RG_LOG_DEBUG, __VA_ARGS__)
#define RG_INFO(...)  rg_log(RG_LOG_INFO, __VA_ARGS__)
#define RG_WARN(...)  rg_log(RG_LOG_WARN, __VA_ARGS__)
#define RG_ERROR(...) rg_log(RG_LOG_ERROR, __VA_ARGS__)

/* The level names rg_log_level_parse accepts, NULL-ended (for the
 * --log-level option row, rg/options.h). */
extern const char *const rg_log_level_names[];

/*
 * Parse one of rg_log_level_names (any case) into *out.
 * Returns 0, or -EINVAL (then *out is untouched).
 */
int rg_log_level_parse(const char *text, enum rg_log_level *out /* OUT */);

#endif /* RG_LOG_H */
