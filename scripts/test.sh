#!/bin/sh
# npm test: lint beside the one tsc run that type checks and builds (npm run compile), then tap with npm test's
# arguments (`npm test -- --reporter=terse`). Lint and compile are one thread each, so lint takes the core that compile
# and then tap leave, instead of tap waiting for the longer of the two. Exits non-zero if lint, compile or tap fails.
npm run lint &
lint=$!
npm run compile && tap "$@"
tested=$?
wait $lint && exit $tested
