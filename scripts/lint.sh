#!/usr/bin/env bash
# clang-format must leave every file unchanged; clang-tidy (.clang-tidy) must report nothing.
set -euo pipefail
build_dir=${1:-build/release}
cd "$(dirname "$0")/.."
files=$(find src tests bench -name '*.cc' -o -name '*.h' | sort)
echo "lint: clang-format"
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files; then
  echo "lint: run 'make format'" >&2
  exit 1
fi
echo "lint: clang-tidy"
srcs=$(find src -name '*.cc' -not -name '*_test.cc' | sort)
# shellcheck disable=SC2086
clang-tidy -p "$build_dir" --quiet $srcs
