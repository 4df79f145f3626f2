/**
 * npm's `prepare` (scripts/build-if-stale.mjs): the README's first `npx fakephone ...` after `npm start` links the
 * checkout into npx's cache and prepares it; a prepare that always rebuilt made that first command wait a minute on a
 * busy machine. It builds when a source is newer than the last successful build, and only then. Runs the script on a
 * small TypeScript project of its own (real tsc, real files, real modification times).
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { tempDir } from '../fixtures/scope.js'

const run = promisify(execFile)
const SCRIPT = resolve('scripts/build-if-stale.mjs')

/** A project laid out as fakephone's: tsconfig.build.json includes src/, tsc from this checkout's node_modules. */
function project(dir: string): void {
  mkdirSync(join(dir, 'src'))
  symlinkSync(resolve('node_modules'), join(dir, 'node_modules'))
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n')
  writeFileSync(join(dir, 'package-lock.json'), '{}\n')
  const options = { outDir: 'dist', rootDir: '.', strict: true, types: [], skipLibCheck: true }
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, include: ['src'] }))
  writeFileSync(join(dir, 'tsconfig.build.json'), JSON.stringify({ extends: './tsconfig.json', include: ['src'] }))
  writeFileSync(join(dir, 'src', 'phone.ts'), 'export const battery: number = 81\n')
}

/** Runs the script in `dir`; its exit code and what it printed. */
async function prepare(dir: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT], { cwd: dir })
    return { code: 0, out: stdout + stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, out: failed.stdout + failed.stderr }
  }
}

/** Sets a file's modification time `seconds` from now (ahead of any build just made). */
function touch(file: string, seconds: number): void {
  const at = Date.now() / 1000 + seconds
  utimesSync(file, at, at)
}

// Four runs of tsc (about 1 s each on an idle machine, several under the whole suite's load).
t.setTimeout(120_000)

t.test(
  'prepare builds a fresh checkout, skips a current build, rebuilds a stale one, never takes a failed build for current',
  async (t) => {
    const dir = tempDir(t)
    project(dir)
    const source = join(dir, 'src', 'phone.ts')
    const built = join(dir, 'dist', 'src', 'phone.js')

    const first = await prepare(dir)
    t.equal(first.code, 0, first.out)
    t.ok(existsSync(built), 'a checkout without dist/ is built')

    rmSync(built)
    const second = await prepare(dir)
    t.equal(second.code, 0)
    t.match(second.out, /not rebuilt/, 'says it did not build')
    t.notOk(existsSync(built), 'nothing was built: the build was current')

    writeFileSync(source, "export const battery: number = 'full'\n")
    touch(source, 10)
    const failed = await prepare(dir)
    t.equal(failed.code, 1, 'a source newer than the build is built again; its failure fails prepare, so npm says so')
    t.match(failed.out, /TS2322/, "tsc's error is shown")

    const again = await prepare(dir)
    t.equal(again.code, 1, 'the next prepare builds again and fails again: a failed build is not a current one')
    t.notMatch(again.out, /not rebuilt/)
  },
)
