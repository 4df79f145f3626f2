/**
 * Under `--json` a command that fails says so as one JSON object on stderr, `{error, code}` with the broker's `status`
 * when it refused, and stdout stays the answer alone (README "`--json` output"); without `--json`, the `error:` line.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConsoleApiError } from '../../cli/console-client.js'
import { errorKind, errorLine, jsonRequested } from '../../cli/error-output.js'
import { UserError } from '../../cli/io.js'
import { addDevice, startCloud } from '../fixtures/cloud.js'
import { run } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

t.test('F1, F2 a console command under --json says its error as one JSON object a script can branch on', async (t) => {
  const cloud = await startCloud(t)
  await addDevice(cloud, 'phone-a')
  const con = (...args: string[]) => run(['console', '--api', cloud.apiUrl, '--data', cloud.dataDir, ...args], cloud.clock)
  const parsed = (err: string): unknown => {
    t.equal(err.split('\n').length, 2, `one line: ${err}`)
    return JSON.parse(err)
  }

  const missing = await con('--json', 'history', 'ghost')
  t.same([missing.code, missing.out], [1, ''], 'exit 1, nothing on stdout')
  t.same(parsed(missing.err), { error: 'device "ghost" not found', code: 'NOT_FOUND', status: 404 }, "the broker's code and status")
  t.equal((await con('history', 'ghost')).err, 'error: device "ghost" not found\n', 'a person still reads the error: line')

  const badToken = await run(['console', '--api', cloud.apiUrl, '--token-file', tempDir(t) + '/none', '--json', 'devices'], cloud.clock)
  t.match(parsed(badToken.err), { code: 'ERROR', error: /none/ }, 'a token file that cannot be read is no refusal of the broker')

  const usage = await con('--json', 'history', 'phone-a', '--limit', '0')
  t.same(parsed(usage.err), { error: "option '--limit <n>' argument '0' is invalid. must be a whole number above 0", code: 'USAGE' })
  t.match(parsed((await con('--json', 'histroy')).err), { code: 'USAGE', error: /^unknown command 'histroy'\n\(Did you mean history\?\)$/ })
  t.same(parsed((await con('--json', 'devices', '--bogus')).err), parsed(`{"error":"unknown option '--bogus'","code":"USAGE"}\n`))

  const unreachable = await run(['console', '--api', `http://127.0.0.1:${cloud.mqttPort}`, '--data', cloud.dataDir, '--json', 'devices'])
  t.match(parsed(unreachable.err), { code: 'UNREACHABLE', error: /probably its MQTT port/ }, 'no HTTP answer: no status')
  const tokenFile = join(tempDir(t), 'token')
  writeFileSync(tokenFile, 'not-the-console-token-of-this-cloud\n', { mode: 0o600 })
  const wrong = await run(['console', '--api', cloud.apiUrl, '--token-file', tokenFile, '--json', 'devices'])
  t.match(parsed(wrong.err), { code: 'UNAUTHORIZED', status: 401 })
})

t.test('the kind of an error and its line, with and without --json', (t) => {
  t.ok(jsonRequested(['console', '--json', 'devices']))
  t.notOk(jsonRequested(['console', 'notify', 'p', '--title', 'x', '--', '--json']), 'after -- it is a value')
  t.same(errorKind(new ConsoleApiError(409, 'refused', undefined, 'NOT_ENABLED')), { code: 'NOT_ENABLED', status: 409 })
  t.same(errorKind(new ConsoleApiError(502, 'a proxy page')), { code: 'BAD_ANSWER', status: 502 }, 'an answer that is no refusal')
  t.same(errorKind(new UserError('ring rejected: no', 1, 'REJECTED')), { code: 'REJECTED' })
  t.same(errorKind(new UserError('no')), { code: 'ERROR' })
  t.same(errorKind(null), { code: 'ERROR' })
  t.equal(errorLine('a "b"', { code: 'ERROR' }, false), 'error: a "b"\n')
  t.equal(errorLine('a "b"', { code: 'ERROR' }, true), '{"error":"a \\"b\\"","code":"ERROR"}\n')
  t.end()
})
