#!/bin/sh
# npm test: `prettier --check` beside scripts/compile-and-lint.mjs, which type checks and builds (as npm run compile),
# then starts tap with npm test's arguments (`npm test -- --reporter=terse`) and runs ESLint (as `eslint .`) on the
# program the type check built while the tests run. Prettier and that script are one thread each, so Prettier takes
# the core the build leaves. Exits non-zero if the layout check, type check, build, ESLint or tap fails.
prettier --check --log-level warn . &
layout=$!
node scripts/compile-and-lint.mjs -- tap "$@"
tested=$?
wait $layout && exit $tested
