/*
 * log.c: stderr logger (see rg/log.h).
 *
 * Invariant: a line is formatted completely in a stack buffer and handed to
 * the kernel with a single write(2), so concurrent callers need no lock and
 * lines never interleave. The level and the process name are read without a
 * lock: both are set once before threads start (the level is atomic anyway,
 * so a reader never sees a torn value).
 */
#define _POSIX_C_SOURCE 200809L
#include "rg/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048

static const char *process_name = "?";
static atomic_int min_level = RG_LOG_INFO;

static const char *const level_names[] = {
	[RG_LOG_DEBUG] = "DEBUG",
	[RG_LOG_INFO] = "INFO",
	[RG_LOG_WARN] = "WARN",
	[RG_LOG_ERROR] = "ERROR",
};

void rg_log_init(const char *name, enum rg_log_level level)
{
	process_name = name ? name : "?";
	atomic_store(&min_level, (int)level);
}

bool rg_log_enabled(enum rg_log_level level)
{
	return (int)level >= atomic_load(&min_level);
}

static const char *level_name(enum rg_log_level level)
{
	if ((unsigned)level > RG_LOG_ERROR)
		return "?";
	return level_names[level];
}

/* Indexed by enum rg_log_level. */
const char *const rg_log_level_names[] = { "debug", "info", "warn", "error", NULL };

int rg_log_level_parse(const char *text, enum rg_log_level *out)
{
	if (!text)
		return -EINVAL;
	for (int i = RG_LOG_DEBUG; i <= RG_LOG_ERROR; i++) {
		if (strcasecmp(text, rg_log_level_names[i]) == 0) {
			*out = (enum rg_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Write all of buf, retrying on EINTR and short writes. */
static void write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere left to report a failing stderr */
		}
		buf += n;
		len -= (size_t)n;
	}
}

void rg_log(enum rg_log_level level, const char *fmt, ...)
{
	char line[LINE_MAX_BYTES];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;
	va_list ap;

	if (!rg_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line + len, sizeof(line) - len, ".%03ldZ %s[%ld] %-5s ",
		     ts.tv_nsec / 1000000L, process_name, (long)getpid(),
		     level_name(level));
	if (n > 0)
		len += (size_t)n;

	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line) - len - 1) {
		/* Cut: keep room for "...\n". */
		len = sizeof(line) - 5;
		memcpy(line + len, "...", 3);
		len += 3;
	} else {
		len += (size_t)n;
	}
	line[len++] = '\n';
	write_all(line, len);
}
