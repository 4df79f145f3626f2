/**
 * The fleet's console API outages on its log (issue 12, fleet/api-outage.ts): one line when it stops answering, its
 * failed calls counted, one line when it answers again; a refusal is an answer, and a late answer to a call sent before
 * the outage does not end it. (A real console API that goes and comes back: test/fleet/api-lost.test.ts.)
 */
import t from 'tap'
import { ConsoleApiError } from '../../cli/console-client.js'
import { ApiOutage, notAnswering } from '../../fleet/api-outage.js'
import { LogCapture } from '../fixtures/logs.js'

const down = (): Promise<never> => Promise.reject(new ConsoleApiError(0, 'cannot reach the broker at http://127.0.0.1:9: ECONNREFUSED'))

t.test('what counts as the console API not answering: no connection or a 5xx, not a refusal', async (t) => {
  t.ok(notAnswering(new ConsoleApiError(0, 'cut')))
  t.ok(notAnswering(new ConsoleApiError(502, 'bad gateway')))
  t.notOk(notAnswering(new ConsoleApiError(409, 'refused')), 'a refusal is an answer')
  t.notOk(notAnswering(new Error('no owner key')), 'not a call to the API')
})

t.test('an outage is said once with why, its failed calls counted, and once more when the API answers again', async (t) => {
  const logs = new LogCapture()
  const outage = new ApiOutage(logs.logger())
  t.equal(await outage.call(() => Promise.resolve(1)), 1, 'a call answered passes its value on')
  // Sent before the API went, answered after: not a sign that it is back.
  let late!: (v: string) => void
  const before = outage.call(() => new Promise<string>((resolve) => (late = resolve)))
  for (let i = 0; i < 5; i++) await t.rejects(outage.call(down), ConsoleApiError, 'each failed call rejects as it did')
  late('late')
  t.equal(await before, 'late')
  t.equal(outage.failedCalls, 5)
  // A refusal (4xx) of a call sent while it was down: the API answers again.
  await t.rejects(
    outage.call(() => Promise.reject(new ConsoleApiError(409, 'refused'))),
    ConsoleApiError,
  )
  t.equal(outage.failedCalls, 0, 'the count starts again')
  await outage.call(() => Promise.resolve())
  const said = logs.lines.map((l) => [l.level, l.msg])
  t.same(said.length, 2, 'two lines for an outage of five failed calls')
  t.same(said[0], [40, 'the console API stopped answering: cannot reach the broker at http://127.0.0.1:9: ECONNREFUSED'])
  t.match(said[1], [40, /^the console API answers again after \d+\.\d s; 5 calls failed meanwhile$/])
  t.match(logs.lines[1], { failedCalls: 5, downMs: Number })

  // A second outage is a new story: said again.
  await t.rejects(outage.call(down))
  t.equal(logs.lines.length, 3)
  t.match(logs.lines[2], { msg: /^the console API stopped answering/ })
})

t.test('without a log, an outage is still counted', async (t) => {
  const outage = new ApiOutage()
  await t.rejects(outage.call(down))
  t.equal(outage.failedCalls, 1)
  await outage.call(() => Promise.resolve())
  t.equal(outage.failedCalls, 0)
})
