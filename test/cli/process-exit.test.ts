/**
 * The built CLI, run as a process with its output on a pipe, writes all of it before it exits: `process.exit` drops
 * what stdout has not written yet, and an answer past the pipe's 64 KiB came out cut (`fakephone console migrate
 * --json` of an account of 1,300 items: its job with the per-item report of M2 is ~440 KB).
 */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { assertBuilt, runCli } from '../fixtures/child.js'
import { tempDir } from '../fixtures/scope.js'

t.test('an answer larger than a pipe holds comes out whole, with its exit code', async (t) => {
  assertBuilt()
  // A bag none of whose 2,000 payload files is in its manifest: a problem listed for each, ~200 KB of JSON.
  const bag = join(tempDir(t), 'bag')
  mkdirSync(join(bag, 'data'), { recursive: true })
  writeFileSync(join(bag, 'bagit.txt'), 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n')
  writeFileSync(join(bag, 'manifest-sha256.txt'), '')
  for (let i = 0; i < 2000; i++) writeFileSync(join(bag, 'data', `file-${i}.txt`), `${i}\n`)
  const { code, out, err } = await runCli(['bag', 'validate', '--json', bag])
  t.equal(code, 1, 'an invalid bag')
  t.match(err, 'the bag is not valid')
  t.ok(out.length > 65536, `more than a pipe holds (${out.length} bytes)`)
  const answer = JSON.parse(out) as { valid: boolean; problems: unknown[] }
  t.equal(answer.valid, false)
  t.equal(answer.problems.length, 2000, 'every problem, none cut off')
})
