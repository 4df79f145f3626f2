/**
 * F1: the web console speaks plain HTTP; told to listen beyond loopback it warns in its log at every start, saying what
 * that exposes (the sign-in link, the session cookie, signed commands) and the safer ways (SSH, a TLS proxy) -- before,
 * it listened on any address it was given without a word. On loopback it says nothing. The tests themselves never listen
 * beyond 127.0.0.1 (test/fixtures/port-guard.ts), so the started console is on loopback and the warning's rule is tested
 * on the addresses a person would give.
 */
import t from 'tap'
import { isLoopback, plainHttpWarning, warnIfExposed } from '../../../cli/web/exposed.js'
import { LogCapture } from '../../fixtures/logs.js'
import { startWeb } from '../../fixtures/web.js'

const WARN = 40

t.test('F1: loopback is 127.0.0.0/8, ::1 and localhost; any other address is the network', async (t) => {
  for (const host of ['127.0.0.1', '127.0.1.1', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1']) t.ok(isLoopback(host), host)
  for (const host of ['0.0.0.0', '::', '192.168.1.20', '10.0.0.5', 'fe80::1', '::ffff:192.168.1.20', 'my-laptop.lan', '127.example.com'])
    t.notOk(isLoopback(host), host)
})

t.test('F1: beyond loopback, one warning at warn level says what plain HTTP exposes and the safer ways', async (t) => {
  const logs = new LogCapture()
  warnIfExposed(logs.logger(), '0.0.0.0', 8090)
  t.equal(logs.lines.length, 1)
  t.match(logs.lines[0], { level: WARN, host: '0.0.0.0', port: 8090, msg: plainHttpWarning('0.0.0.0', 8090) })
  t.match(logs.lines[0]?.msg, /plain HTTP \(no TLS\).*sign-in link or session cookie.*ssh -L 8090:127\.0\.0\.1:8090.*TLS proxy/)
  warnIfExposed(logs.logger(), '127.0.0.1', 8090)
  t.equal(logs.lines.length, 1, 'nothing more for loopback')
})

t.test('F1: the console started on 127.0.0.1 warns of nothing', async (t) => {
  const s = await startWeb(t)
  t.notOk(
    s.cloud.logs.lines.some((l) => /plain HTTP/.test(l.msg)),
    'no warning',
  )
  t.match(s.web.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
})
