/** 9: the suite's guard against fixed ports (test/fixtures/port-guard.ts, loaded by .taprc into every test process and its children). */
import t from 'tap'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { connect, createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { assertBuilt, cliCommand } from './fixtures/child.js'
import { takeViolations } from './fixtures/port-guard.js'
import { tempDir } from './fixtures/scope.js'

t.test('a connection to a port the OS did not choose is never made, fails with EFIXEDPORT and is reported', async (t) => {
  t.teardown(() => void takeViolations())
  const socket = connect(8080, '127.0.0.1')
  const [err] = (await once(socket, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException]
  t.equal(err.code, 'EFIXEDPORT')
  await t.rejects(fetch('http://127.0.0.1:1883/'), 'fetch is refused too')
  // node:http hands net the request's path beside the port: still a TCP connection, still refused.
  const request = get('http://127.0.0.1:2947/api/devices')
  const [httpErr] = (await once(request, 'error')) as [NodeJS.ErrnoException]
  t.equal(httpErr.code, 'EFIXEDPORT', 'node:http is refused too')
  const seen = takeViolations()
  t.match(seen, [/127\.0\.0\.1:8080, a port the OS did not choose/, /127\.0\.0\.1:1883/, /127\.0\.0\.1:2947/])
})

t.test('a child process started by a test is guarded too, and its attempt is reported here', async (t) => {
  t.teardown(() => void takeViolations())
  const script = "require('node:net').connect({ port: 2947, host: '127.0.0.1' }).on('error', (e) => console.log(e.code))"
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script])
  t.equal(stdout.trim(), 'EFIXEDPORT')
  t.match(takeViolations(), [/127\.0\.0\.1:2947/])
})

t.test('the built CLI, started as the tests start it (cliCommand: without tap hooks), is guarded too', async (t) => {
  assertBuilt()
  t.teardown(() => void takeViolations())
  const dir = tempDir(t)
  writeFileSync(join(dir, 'console.token'), 'x\n')
  const [file, args] = cliCommand(['console', '--api', 'http://127.0.0.1:8080', '--data', dir, 'devices'])
  const failed = (await promisify(execFile)(file, args).catch((e: unknown) => e)) as { code?: unknown }
  t.equal(failed.code, 1, 'the console cannot reach the API')
  t.match(takeViolations(), [/127\.0\.0\.1:8080, a port the OS did not choose/])
})

t.test('a port the OS chose is reached as usual', async (t) => {
  const server = createServer((s) => s.end('hi'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
  const [data] = (await once(socket, 'data')) as [Buffer]
  t.equal(data.toString(), 'hi')
  t.same(takeViolations(), [])
})
