#!/usr/bin/env bash
# fuzz/run.sh: build ringgate's libFuzzer targets with clang in a build tree
# of their own, then fuzz each for a while, and say how far each got.
#
#   fuzz/run.sh [--build-only] [TARGET...]     TARGET: frame seal gateway http ws gamesrv dbproxy
#
# Environment:
#   FUZZ_BUILD_DIR  the clang build tree (default: build-fuzz)
#   FUZZ_TIME       seconds per target (default: 60; docs/fuzzing.md has the
#                   command for long runs)
#   FUZZ_ARGS       extra libFuzzer flags (for example -jobs=2 -workers=2)
#   CC              the compiler (default: clang-14, else clang)
#
# Seeds come from fuzz/corpus/<target>/ (read only); what the fuzzer finds
# goes to $FUZZ_BUILD_DIR/corpus/<target>/, crashes to
# $FUZZ_BUILD_DIR/artifacts/<target>/, logs to $FUZZ_BUILD_DIR/logs/.
# Exit status: 0 every target ran clean; 1 a crash, leak, sanitizer report
# or broken invariant (reproduce with: $FUZZ_BUILD_DIR/fuzz/fuzz_<t> FILE);
# 77 clang or its fuzzer runtime (Debian: libclang-rt-14-dev) is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
TIME=${FUZZ_TIME:-60}
ALL=(frame seal gateway http ws gamesrv dbproxy)
build_only=0
if [[ ${1:-} == --build-only ]]; then
	build_only=1
	shift
fi
targets=("$@")
((${#targets[@]})) || targets=("${ALL[@]}")

cc=${CC:-}
if [[ -z $cc ]]; then
	cc=$(command -v clang-14 || command -v clang || true)
fi
if [[ -z $cc ]]; then
	echo "fuzz: no clang found; skipping" >&2
	exit 77
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>/dev/null; then
	echo "fuzz: $cc cannot link -fsanitize=fuzzer (install libclang-rt-14-dev); skipping" >&2
	exit 77
fi

# One configure+build at a time, even when several runs start together.
mkdir -p "$BUILD"
exec 9>"$BUILD/.build.lock"
flock 9
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
	cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DRINGGATE_SANITIZE=ON -DRINGGATE_FUZZ=ON \
		-DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
fi
cmake --build "$BUILD" -j "${FUZZ_BUILD_JOBS:-2}" --target "${targets[@]/#/fuzz_}" >/dev/null
flock -u 9
((build_only)) && exit 0

mkdir -p "$BUILD/logs"
status=0
for t in "${targets[@]}"; do
	work="$BUILD/corpus/$t"
	art="$BUILD/artifacts/$t"
	log="$BUILD/logs/$t.log"
	mkdir -p "$work" "$art"
	# Long runs make many slow inputs; -timeout catches a hang as a crash.
	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
	if ! "$BUILD/fuzz/fuzz_$t" -max_total_time="$TIME" -timeout=20 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/" ${FUZZ_ARGS:-} \
		"$work" "$ROOT/fuzz/corpus/$t" >"$log" 2>&1; then
		echo "fuzz: $t FAILED; the last lines of $log:" >&2
		tail -n 40 "$log" >&2
		status=1
		continue
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
	cov=$(sed -E 's/.*cov: ([0-9]+).*/\1/' <<<"$last")
	ft=$(sed -E 's/.*ft: ([0-9]+).*/\1/' <<<"$last")
	corp=$(sed -E 's/.*corp: ([0-9]+).*/\1/' <<<"$last")
	echo "fuzz: $t: ${runs:-?} executions in ${TIME}s, cov: ${cov:-?} ft: ${ft:-?} corpus: ${corp:-?} (log $log)"
done
exit $status
