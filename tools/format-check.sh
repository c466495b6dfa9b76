#!/usr/bin/env bash
# Fails listing every C file that clang-format (config: .clang-format) would change.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r f; do
  if ! diff -q <(clang-format "$f") "$f" >/dev/null; then
    echo "format-check: $f is not clang-formatted (run: make format)"
    bad=1
  fi
done < <(find src include tests -name '*.[ch]' -not -path '*/node_modules/*' | sort)
[ "$bad" = 0 ] && echo "format-check: ok"
exit "$bad"
