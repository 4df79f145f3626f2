#!/usr/bin/env node
// npm's `prepare` (run by `npm install`, `npm ci`, `npm pack` and, in a checkout, by the first `npx fakephone`, which
// links the checkout into npx's cache and prepares it): builds dist/ as `npm run build` does, unless the last
// successful build is newer than every file it was built from. Without this, the README's first
// `npx fakephone ...` after `npm start` rebuilt the whole program (about 20 s of CPU, over a minute on a busy Pi).
//
//   node scripts/build-if-stale.mjs
//
// The sources are tsconfig.json, tsconfig.build.json, package-lock.json and every file under the folders
// tsconfig.build.json includes. dist/.built is touched after tsc succeeds, so a failed build is never mistaken for a
// current one. `npm run build` always builds.
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const stamp = join('dist', '.built')

/** The newest modification time (ms) of a file, or of every file under a folder; 0 if it does not exist. */
function newest(path) {
  let stat
  try {
    stat = statSync(path)
  } catch {
    return 0
  }
  if (!stat.isDirectory()) return stat.mtimeMs
  return readdirSync(path).reduce((latest, name) => Math.max(latest, newest(join(path, name))), stat.mtimeMs)
}

const folders = JSON.parse(readFileSync('tsconfig.build.json', 'utf8')).include
const sources = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json', ...folders]
const built = newest(stamp)
if (built > 0 && sources.every((source) => newest(source) < built)) {
  console.log('dist/ is newer than every source: not rebuilt (npm run build rebuilds it)')
  process.exit(0)
}
const tsc = createRequire(join(process.cwd(), 'package.json')).resolve('typescript/bin/tsc')
const { status } = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' })
if (status !== 0) process.exit(1)
writeFileSync(stamp, `${new Date().toISOString()}\n`)
