# shellcheck shell=bash
# bench/lib/callgrind.sh — what the instruction-count benchmarks
# (bench/forward_instr.sh, bench/overlay/relay_instr.sh) share: their command
# line, the checks before a run, a scratch folder, and running a benchmark
# under `valgrind --tool=callgrind` (instructions do not move with the
# machine's load the way time does). Sourced, not run; needs bash.

# instr_args USAGE --opt=VAR... -- "$@": "--opt value" sets VAR, a word
# without a leading dash sets BUILD (the build folder); anything else prints
# "usage: USAGE" and exits 2.
instr_args() {
  local usage=$1 o
  local -A var=()
  shift
  while [ "$1" != "--" ]; do
    o=$1
    var[${o%%=*}]=${o#*=}
    shift
  done
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
    -*)
      if [ -z "${var[$1]:-}" ] || [ $# -lt 2 ]; then
        echo "usage: $usage" >&2
        exit 2
      fi
      printf -v "${var[$1]}" '%s' "$2"
      shift
      ;;
    *) BUILD=$1 ;;
    esac
    shift
  done
}

# instr_setup NAME BENCH: valgrind and $BUILD/BENCH are there (else says what
# to do and exits 2); TMP = a scratch folder removed at exit.
instr_setup() {
  command -v valgrind >/dev/null || { echo "$1: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
  [ -x "$BUILD/$2" ] ||
    { echo "$1: $BUILD/$2 missing: build it first (cmake --build $BUILD --target $2)" >&2; exit 2; }
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/hd-instr.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
}

# instr_callgrind OUT ERR [VALGRIND_OPTION...] -- CMD...: runs CMD under
# callgrind, the counts into OUT, valgrind's and CMD's stderr into ERR (CMD's
# stdout is the caller's); if it fails, says so with ERR's last lines and exits 1.
instr_callgrind() {
  local out=$1 err=$2
  local -a opt=()
  shift 2
  while [ "$1" != "--" ]; do
    opt+=("$1")
    shift
  done
  shift
  valgrind --tool=callgrind --callgrind-out-file="$out" "${opt[@]}" "$@" 2>"$err" ||
    { echo "$(basename "$1") ${*:2} failed under valgrind:" >&2; tail -5 "$err" >&2; exit 1; }
}

# instr_collected ERR: the instructions callgrind counted in all (its
# "Collected :" line in ERR, with --toggle-collect only inside that function).
instr_collected() { sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$1"; }

# instr_inclusive OUT FILE FUNCTION: FUNCTION's inclusive instructions in the
# callgrind output OUT (FILE: the source file that defines it, e.g. relay_bench.c).
instr_inclusive() {
  [ -f "$1.ann" ] || callgrind_annotate --inclusive=yes "$1" >"$1.ann" 2>/dev/null
  awk -v f="$2:$3 " 'index($0, f) { gsub(",", "", $1); print $1; exit }' "$1.ann"
}
