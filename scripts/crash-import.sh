#!/bin/sh
# The full-size crash test: 20 SIGKILLs of the server at random points during
# 100,000-line bulk imports and a request storm; after each restart the database passes
# PRAGMA integrity_check, every acknowledged association is there and every import job is
# whole or absent (shown as interrupted). The test suite runs the same test at 10,000 lines.
set -eu
cd "$(dirname "$0")/.."
ZEROTOUCH_CRASH_LINES=100000 exec cargo test --release --test it crash -- --nocapture
