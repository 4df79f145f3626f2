/**
 * One broker under test in its own process, for `npm run bench`'s three-way
 * comparison (compare.ts), so each broker's CPU and memory are its own and
 * none shares an event loop with the load generator:
 *   node dist/bench/broker-child.js fakephone DATA_DIR   the fakephone broker as shipped: authentication, ACL, storage,
 *                                                        default rate limit; devices registered in DATA_DIR beforehand
 *   node dist/bench/broker-child.js aedes                stock Aedes, no hooks, in-memory, TCP_NODELAY like the others
 * Prints `{"port":N}` (fakephone: `{"port":N,"httpPort":M}`, M its console API) on stdout once it listens on
 * 127.0.0.1; stops on SIGTERM.
 * With FAKEPHONE_PROFILE_DIR set, SIGUSR2 starts the V8 CPU profiler and the
 * next SIGUSR2 writes `KIND-PID.cpuprofile` there and prints `{"profiled":PATH}`:
 * a profile of the measured load alone, without start-up. With
 * FAKEPHONE_PROFILE_PHASES (comma-separated names) the n-th profile is named
 * after the n-th phase, `KIND-PID-PHASE.cpuprofile` (an empty name keeps the
 * plain one): compare.ts profiles the connect ramp first, then the load.
 */
import { Aedes } from 'aedes'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { pino } from 'pino'
import { SystemClock } from '../common/clock.js'
import { createLogger } from '../common/log.js'
import { CloudBroker, DEFAULT_BROKER_OPTIONS } from '../broker/server.js'

const LOOPBACK = '127.0.0.1'

interface Listening {
  port: number
  /** fakephone's HTTP side (the console API). */
  httpPort?: number
  stop: () => Promise<void>
}

async function fakephone(dataDir: string): Promise<Listening> {
  const log = createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: true }) })
  const broker = new CloudBroker({ ...DEFAULT_BROKER_OPTIONS, dataDir, host: LOOPBACK, mqttPort: 0, httpPort: 0 }, new SystemClock(), log)
  const { mqttPort, httpPort } = await broker.start()
  return { port: mqttPort, httpPort, stop: () => broker.stop() }
}

async function aedes(): Promise<Listening> {
  const broker = new Aedes()
  await broker.listen()
  const server = createServer((socket) => {
    socket.setNoDelay(true)
    broker.handle(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve))
  return {
    port: (server.address() as AddressInfo).port,
    stop: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** SIGUSR2 toggles the CPU profiler (see the module comment). */
function profileOnSignal(dir: string, kind: string, phases: string[]): void {
  mkdirSync(dir, { recursive: true })
  let session: Session | null = null
  let written = 0
  const toggle = async (): Promise<void> => {
    if (!session) {
      session = new Session()
      session.connect()
      await session.post('Profiler.enable')
      await session.post('Profiler.start')
      return
    }
    const { profile } = await session.post('Profiler.stop')
    session.disconnect()
    session = null
    const phase = phases[written++]
    const file = join(dir, `${kind}-${process.pid}${phase ? `-${phase}` : ''}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    process.stdout.write(`${JSON.stringify({ profiled: file })}\n`)
  }
  process.on('SIGUSR2', () => void toggle())
}

async function main(): Promise<void> {
  const [kind, dataDir] = process.argv.slice(2)
  const profileDir = process.env['FAKEPHONE_PROFILE_DIR']
  if (profileDir) profileOnSignal(profileDir, kind ?? 'broker', (process.env['FAKEPHONE_PROFILE_PHASES'] ?? '').split(','))
  const started = kind === 'fakephone' && dataDir ? await fakephone(dataDir) : kind === 'aedes' ? await aedes() : null
  if (!started) {
    process.stderr.write('usage: broker-child.js fakephone DATA_DIR | aedes\n')
    process.exit(2)
  }
  process.once('SIGTERM', () => {
    // A graceful stop, so `--cpu-prof` can write its profile on the way out.
    void started.stop().finally(() => process.exit(0))
  })
  process.stdout.write(`${JSON.stringify({ port: started.port, httpPort: started.httpPort })}\n`)
}

void main().catch((err: unknown) => {
  process.stderr.write(`broker-child: ${String(err)}\n`)
  process.exit(1)
})
