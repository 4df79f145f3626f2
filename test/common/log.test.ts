import t from 'tap'
import { LogCapture } from '../fixtures/logs.js'
import { createLogger } from '../../common/log.js'

t.test('secrets never reach a log line', (t) => {
  const logs = new LogCapture()
  const log = logs.logger()
  log.info({ secret: 's1', password: 'p1', token: 't1', device: { secret: 's2' }, headers: { authorization: 'Bearer x' } }, 'hello')
  const line = JSON.stringify(logs.lines[0])
  for (const s of ['s1', 'p1', 't1', 's2', 'Bearer x']) t.notMatch(line, s)
  t.match(line, /\[Redacted\]/)
  t.end()
})

t.test('loggers default to level info, JSON on stdout or pretty lines for a terminal', (t) => {
  t.equal(createLogger().level, 'info')
  t.equal(createLogger({ level: 'silent', pretty: true }).level, 'silent')
  t.equal(createLogger({ level: 'warn', pretty: false }).level, 'warn')
  t.end()
})
