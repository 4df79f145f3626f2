/**
 * 10: npm test's build fills the tests' transpile cache (scripts/compile-and-lint.mjs with test/fixtures/ts-hooks.mjs's
 * cacheEmitted), so the tests start with nothing to transpile. What a test process then runs must be exactly what
 * transpiling the file alone gives.
 */
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { cacheEmitted, transpile } from './fixtures/ts-hooks.mjs'
import { tempDir } from './fixtures/scope.js'

const SOURCE = `import { type Clock, SystemClock } from './clock.js'
import type { Readable } from 'node:stream'
export enum Mode { On = 1, Off }
export class Phone {
  constructor(private readonly clock: Clock = new SystemClock(), readonly input?: Readable) {}
  age(at: number): number { return this.clock.now() - at }
}
`

/**
 * A file of SOURCE in a package of `type` (as package.json says), built with tsconfig.json's compiler options and
 * `changes`; caches the build's output and says whether it was cached.
 */
function buildAndCache(t: Test, type: 'module' | 'commonjs', changes: ts.CompilerOptions = {}): { file: string; cached: boolean } {
  const dir = tempDir(t)
  const file = join(dir, 'phone.ts')
  writeFileSync(file, SOURCE)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type }))
  const config = ts.getParsedCommandLineOfConfigFile('tsconfig.json', undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: () => t.fail('tsconfig.json cannot be read'),
  })
  // One file on its own: no imports followed, no libraries read (they change the checks, not the emitted code).
  const options = { ...config?.options, rootDir: dir, outDir: join(dir, 'out'), noResolve: true, noLib: true, types: [], ...changes }
  const program = ts.createProgram([file], options)
  const out = new Map<string, string>()
  program.emit(undefined, (name, text) => out.set(name.endsWith('.map') ? 'map' : 'js', text))
  const source = program.getSourceFile(file) as ts.SourceFile
  return { file, cached: cacheEmitted(source, out.get('js') ?? '', out.get('map') ?? '', options) }
}

t.test("10: the build's JavaScript for a file is cached as transpiling it alone would give, byte for byte", async (t) => {
  const { file, cached } = buildAndCache(t, 'module')
  t.ok(cached, 'cached from the build')
  const alone = ts.transpileModule(SOURCE, {
    fileName: file,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, esModuleInterop: true, inlineSourceMap: true },
  }).outputText
  t.equal(transpile(file, SOURCE), alone, 'a test process gets the cached text, the same as transpiling the file alone')
  t.match(alone, /export var Mode;[\s\S]*\/\/# sourceMappingURL=data:application\/json;base64,/)
})

t.test('10: a build whose code differs from what a test process runs caches nothing', async (t) => {
  t.notOk(buildAndCache(t, 'module', { target: ts.ScriptTarget.ES2015 }).cached, 'another target')
  t.notOk(buildAndCache(t, 'module', { esModuleInterop: false }).cached, 'no esModuleInterop')
  t.notOk(buildAndCache(t, 'commonjs').cached, 'a CommonJS package, which NodeNext compiles to require()')
  const { file } = buildAndCache(t, 'commonjs')
  t.match(transpile(file, SOURCE), /^import \{ SystemClock \}/, 'a test process transpiles such a file itself, as ESM')
})
