#!/usr/bin/env node
// npm test's type check, build and ESLint in one process, on one TypeScript program. `tsc` (npm run compile) and
// `eslint .` (npm run lint) each build the whole program of tsconfig.json; here ESLint's type-aware rules read the one
// program tsc's check already built and checked (typescript-eslint's `programs` option), which saves about a third of
// their CPU together (measured in the README's Development section).
//
//   node scripts/compile-and-lint.mjs [-- COMMAND ARGS...]
//
// 1. Type checks every file of tsconfig.json and prints the errors as tsc does; emits the build (dist/) as tsc does,
//    without the compiled tests (dist/test/, which nothing runs); fills the tests' transpile cache with the same
//    JavaScript (test/fixtures/ts-hooks.mjs's cacheEmitted), so tap's ts-warm.mjs finds nothing left to transpile.
// 2. If the type check passed and a COMMAND is given, starts it (npm test: tap) with this process's terminal, so the
//    tests run while ESLint does.
// 3. Runs ESLint over the project as `eslint .` does (same eslint.config.js, same files) and prints its findings.
// Exits non-zero if the type check, ESLint or COMMAND failed (COMMAND's own exit code when only it failed).
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join, sep } from 'node:path'
import { ESLint } from 'eslint'
import ts from 'typescript'
import { cacheEmitted } from '../test/fixtures/ts-hooks.mjs'

const separator = process.argv.indexOf('--')
const command = separator === -1 ? [] : process.argv.slice(separator + 1)

/** Type checks and builds as `tsc` with tsconfig.json; returns the program and whether the check passed. */
function compile() {
  const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (diagnostic) => report([diagnostic]) }
  const config = ts.getParsedCommandLineOfConfigFile('tsconfig.json', undefined, host)
  if (!config) process.exit(2)
  const program = ts.createProgram({
    rootNames: config.fileNames,
    options: config.options,
    projectReferences: config.projectReferences,
    configFileParsingDiagnostics: ts.getConfigFileParsingDiagnostics(config),
  })
  const diagnostics = [...ts.getPreEmitDiagnostics(program)]
  const compiledTests = join(config.options.outDir ?? 'dist', 'test') + sep
  /** Each source file's source map, emitted just before its JavaScript. */
  const maps = new Map()
  const emitted = program.emit(undefined, (file, text, bom, _onError, [source] = []) => {
    if (!file.startsWith(compiledTests)) ts.sys.writeFile(file, text, bom)
    if (source === undefined) return
    if (file.endsWith('.map')) maps.set(source, text)
    else if (maps.has(source)) cacheEmitted(source, text, maps.get(source), config.options)
  })
  // A build from before this script emitted the tests too.
  rmSync(compiledTests, { recursive: true, force: true })
  diagnostics.push(...emitted.diagnostics)
  report(diagnostics)
  return { program, passed: diagnostics.length === 0 }
}

/** Prints diagnostics as tsc does: with colour and source context on a terminal, one line each otherwise. */
function report(diagnostics) {
  if (diagnostics.length === 0) return
  const formatHost = { getCanonicalFileName: (f) => f, getCurrentDirectory: ts.sys.getCurrentDirectory, getNewLine: () => ts.sys.newLine }
  const text = process.stdout.isTTY
    ? ts.formatDiagnosticsWithColorAndContext(diagnostics, formatHost)
    : ts.formatDiagnostics(diagnostics, formatHost)
  process.stdout.write(`${text}\nFound ${diagnostics.length} error${diagnostics.length === 1 ? '' : 's'} (type check).\n`)
}

/** Starts COMMAND with this process's terminal; resolves to its exit code. */
function start([file, ...args]) {
  const child = spawn(file, args, { stdio: 'inherit' })
  return new Promise((resolve) => {
    child.on('error', (error) => {
      console.error(`${file}: ${error.message}`)
      resolve(127)
    })
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)))
  })
}

/** `eslint .` with the given program for every TypeScript file; resolves to whether no rule reported an error. */
async function lint(program) {
  const eslint = new ESLint({
    overrideConfig: [
      { files: ['**/*.ts', '**/*.mts', '**/*.cts'], languageOptions: { parserOptions: { programs: [program], project: false } } },
    ],
  })
  const results = await eslint.lintFiles(['.'])
  const formatter = await eslint.loadFormatter('stylish')
  const text = await formatter.format(results)
  if (text) process.stdout.write(`${text}\n`)
  return results.every((result) => result.errorCount === 0 && result.fatalErrorCount === 0)
}

const { program, passed } = compile()
const tested = passed && command.length > 0 ? start(command) : Promise.resolve(passed ? 0 : 1)
const linted = await lint(program)
const status = await tested
process.exitCode = status !== 0 ? status : linted ? 0 : 1
