#!/bin/sh
# Runs a command with the soft open-file limit raised, as .ci/run does: the tests open many
# sockets at once (fan-out, floods), and most laptops' soft limit of 1,024 is too few, while the
# hard limit usually allows 20,000. deno task's shell has no `ulimit`, hence this script.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec "$@"
