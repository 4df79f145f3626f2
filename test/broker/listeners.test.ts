/** The broker's listeners: a failed accept is one logged line, not the end of the process (brief: bad input keeps it running). */
import t from 'tap'
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { closeServer, listen } from '../../broker/listeners.js'
import { LogCapture } from '../fixtures/logs.js'

/**
 * What Node's `net` emits when libuv hands it a failed `accept`. Emitted here by hand: a real EMFILE needs this
 * process out of open files, which would take the test runner down with it, and Node cannot lower its own limit.
 */
const acceptError = (code: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`accept ${code}`), { code, errno: -24, syscall: 'accept' })

t.test('an accept that fails (out of open files) is logged with the fix, and the listener keeps serving', async (t) => {
  const logs = new LogCapture()
  const server = createServer((socket: Socket) => socket.end('hello'))
  t.teardown(() => closeServer(server))
  const port = await listen(server, 'MQTT', 0, '127.0.0.1', logs.logger())

  server.emit('error', acceptError('EMFILE'))
  t.match(logs.lines.at(-1), {
    level: 50,
    code: 'EMFILE',
    listener: 'MQTT',
    msg: /^MQTT listener: accept EMFILE; out of open files: new connections are refused until some close; raise the hard limit/,
  })
  t.match(logs.lines.at(-1)?.msg, /\(LimitNOFILE=\); still serving$/)
  server.emit('error', acceptError('ENOBUFS'))
  t.match(logs.lines.at(-1), { code: 'ENOBUFS', msg: /accept ENOBUFS; a new connection was lost; still serving/ })

  const client = connect(port, '127.0.0.1')
  const [greeting] = (await once(client, 'data')) as [Buffer]
  t.equal(greeting.toString(), 'hello', 'a new connection after the errors is served')
  client.destroy()
})
