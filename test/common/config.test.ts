/** Config layers (file < environment < flags), the environment naming rule, and every problem reported with where it came from. */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { symlinkSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { z } from 'zod'
import { BROKER_CONFIG } from '../../broker/config.js'
import { ConfigError, DurationSchema, SizeSchema, envName, loadConfig, settings } from '../../common/config.js'
import { tempDir } from '../fixtures/scope.js'

const write = (dir: string, name: string, value: unknown): string => {
  const file = join(dir, name)
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value))
  return file
}

/** The ConfigError a load fails with. */
async function failure(loading: Promise<unknown>): Promise<ConfigError> {
  try {
    await loading
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('the config loaded')
}

const problems = async (sources: Parameters<typeof loadConfig>[1]): Promise<string[]> =>
  (await failure(loadConfig(BROKER_CONFIG, sources))).problems

t.test('environment names come from the schema keys by one rule', (t) => {
  t.equal(envName('broker', ['mqttPort']), 'FAKEPHONE_BROKER_MQTT_PORT')
  t.equal(envName('broker', ['rateLimit', 'perSecond']), 'FAKEPHONE_BROKER_RATE_LIMIT_PER_SECOND')
  t.equal(envName('agent', ['gpsdMaxAge']), 'FAKEPHONE_AGENT_GPSD_MAX_AGE')
  t.same(
    settings(BROKER_CONFIG.schema).map((s) => `${s.path.join('.')}${s.text ? ' (text)' : ''}`),
    [
      'dataDir (text)',
      'host (text)',
      'mqttPort',
      'httpPort',
      'maxPacketBytes',
      'connectTimeout',
      'rateLimit.burst',
      'rateLimit.perSecond',
      'serviceNotices',
      'simulatedTime',
      'freeQuota',
      'premiumQuota',
      'driveCleanupBatch',
      'driveCleanupEvery',
      'backupCron (text)',
      'backupCleanupDelay',
      'backupCleanupBatch',
      'backupCleanupEvery',
      'logLevel (text)',
    ],
    'every leaf setting, nested ones included; text settings are never read as JSON',
  )
  t.end()
})

const DEFAULTS = {
  dataDir: './data',
  host: '127.0.0.1',
  mqttPort: 1883,
  httpPort: 8080,
  maxPacketBytes: 256 * 1024,
  connectTimeout: 10_000,
  rateLimit: { burst: 1000, perSecond: 100 },
  serviceNotices: 0,
  simulatedTime: false,
  freeQuota: 5 * 1024 ** 3,
  premiumQuota: 200 * 1024 ** 3,
  driveCleanupBatch: 100,
  driveCleanupEvery: 3_600_000,
  backupCron: '0 3 * * *',
  backupCleanupDelay: 7 * 86_400_000,
  backupCleanupBatch: 10,
  backupCleanupEvery: 86_400_000,
  logLevel: 'info',
}

t.test('no file, no environment, no flags: the defaults', async (t) => {
  t.same(await loadConfig(BROKER_CONFIG, {}), DEFAULTS)
})

t.test('a file is overridden by the environment, which is overridden by flags; nested objects merge key by key', async (t) => {
  const dir = tempDir(t)
  const file = write(dir, 'broker.json', {
    dataDir: '/srv/fp',
    mqttPort: 1000,
    httpPort: 1001,
    connectTimeout: '5s',
    rateLimit: { burst: 7, perSecond: 2 },
    host: '0.0.0.0',
  })
  const env = {
    FAKEPHONE_BROKER_MQTT_PORT: '2000',
    FAKEPHONE_BROKER_HTTP_PORT: '2001',
    FAKEPHONE_BROKER_RATE_LIMIT_BURST: '9',
    FAKEPHONE_BROKER_HOST: '127.0.0.2',
    OTHER: 'ignored',
  }
  const flags = { values: { mqttPort: 3000 }, names: { mqttPort: '--mqtt-port' } }
  t.same(await loadConfig(BROKER_CONFIG, { file, env, flags }), {
    ...DEFAULTS,
    dataDir: '/srv/fp',
    host: '127.0.0.2',
    mqttPort: 3000,
    httpPort: 2001,
    connectTimeout: 5000,
    rateLimit: { burst: 9, perSecond: 2 },
  })
})

t.test('every problem is reported at once, each named by the file key, variable or flag it came from', async (t) => {
  const dir = tempDir(t)
  const file = write(dir, 'broker.json', {
    mqttPort: 'one',
    httpPort: 70000,
    rateLimit: { burst: 0, brust: 3 },
    connectTimeout: 'soon',
    maxPacketBytes: 5,
    typo: true,
  })
  const found = await problems({
    file,
    env: {
      FAKEPHONE_BROKER_MAX_PACKET_BYTES: '-1',
      FAKEPHONE_BROKER_LOG_LEVEL: 'loud',
      FAKEPHONE_BROKER_MQTT_PROT: '1',
      FAKEPHONE_BROKER_COLOUR: 'blue',
    },
    flags: { values: { 'rateLimit.perSecond': 0 }, names: { 'rateLimit.perSecond': '--per-second' } },
  })
  t.match(found, [
    'FAKEPHONE_BROKER_MQTT_PROT: no such broker setting (did you mean FAKEPHONE_BROKER_MQTT_PORT?)',
    'FAKEPHONE_BROKER_COLOUR: no such broker setting (`fakephone config env --kind broker` lists them)',
    new RegExp(`^${file}: mqttPort: Invalid input: expected number, received string$`),
    new RegExp(`^${file}: httpPort: Too big: expected number to be <=65535$`),
    /^FAKEPHONE_BROKER_MAX_PACKET_BYTES: Too small/,
    new RegExp(`^${file}: connectTimeout: not a duration: "soon"`),
    new RegExp(`^${file}: rateLimit.burst: Too small`),
    /^--per-second: Too small/,
    new RegExp(`^${file}: rateLimit.brust: unknown setting; did you mean "burst"\\?$`),
    /^FAKEPHONE_BROKER_LOG_LEVEL: Invalid option: expected one of "fatal"\|"error"/,
    new RegExp(`^${file}: typo: unknown setting \\(\`fakephone config env --kind broker\` lists every setting\\)$`),
  ])
  t.equal(found.length, 11, 'nothing more, nothing less')
  const err = await failure(loadConfig(BROKER_CONFIG, { file }))
  t.match(err, { code: 'ECONFIG', kind: 'broker' })
  t.match(err.message, /^invalid broker config \(6 problems\):\n {2}\S+broker\.json: mqttPort/, 'the message heads a list of the problems')
})

t.test('a file that cannot be read, is not JSON or is not an object is one problem, and hides nothing else', async (t) => {
  const dir = tempDir(t)
  const env = { FAKEPHONE_BROKER_MQTT_PORT: 'x' }
  t.same(await problems({ file: join(dir, 'none.json'), env }), [`${join(dir, 'none.json')}: cannot read it: no such file (ENOENT)`])
  t.same(await problems({ file: dir }), [`${dir}: cannot read it: a folder, not a file (EISDIR)`])
  t.same(await problems({ file: '/dev/zero' }), ['/dev/zero: cannot read it: a device, not a file'], 'a device is never read')
  // A named pipe with no writer held the start in its open, where SIGTERM did not reach it either.
  const fifo = join(dir, 'broker.fifo')
  execFileSync('mkfifo', [fifo])
  t.same(
    await problems({ file: fifo }),
    [`${fifo}: cannot read it: a named pipe (FIFO), not a file: give the file itself, or <(cat FILE)`],
    'a named pipe is never opened',
  )
  const link = join(dir, 'link.json')
  symlinkSync(fifo, link)
  t.same(
    await problems({ file: link }),
    [`${link}: cannot read it: a named pipe (FIFO), not a file: give the file itself, or <(cat FILE)`],
    'nor one reached through a link',
  )
  // What the shell makes of <(…) is a pipe too, with a writer: it is read. Only a child of that shell is given it.
  const reader = fileURLToPath(new URL('../fixtures/read-config.ts', import.meta.url))
  const line = [process.execPath, ...process.execArgv, reader].map((a) => `'${a}'`).join(' ')
  const piped = execFileSync('bash', ['-c', `${line} <(printf '{"mqttPort": 1884}')`], { encoding: 'utf8' })
  t.same(JSON.parse(piped), { mqttPort: 1884 }, 'a pipe the shell made is read')
  const socket = join(dir, 'broker.sock')
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(socket, resolve))
  t.teardown(() => server.close())
  t.same(await problems({ file: socket }), [`${socket}: cannot read it: not a regular file (a socket or a block device)`])
  const notDir = write(dir, 'plain', 'x')
  t.same(await problems({ file: join(notDir, 'broker.json') }), [`${join(notDir, 'broker.json')}: cannot read it (ENOTDIR)`])
  const broken = write(dir, 'broken.json', '{"mqttPort": 1883,,}')
  t.match(await problems({ file: broken, env }), [new RegExp(`^${broken}: not valid JSON at line 1, column 19 \\(.*position 18`)])
  // A file written by hand: where it stopped as an editor counts, not only the character's offset (Node 20's words).
  const comma = write(dir, 'comma.json', '{\n  "mqttPort": 1883,\n  "host": "127.0.0.1",\n}\n')
  t.match(await problems({ file: comma }), [new RegExp(`^${comma}: not valid JSON at line 4, column 1 \\(.*position 45`)])
  const yaml = write(dir, 'broker.yaml', 'mqttPort: 1883\nhost: 127.0.0.1\n')
  t.same(await problems({ file: yaml }), [
    `${yaml}: not valid JSON (Unexpected token 'm', "mqttPort: "... is not valid JSON): a config file is JSON (YAML is for scenarios)`,
  ])
  const short = write(dir, 'short.yml', 'a: 1\n')
  t.match(await problems({ file: short }), [/^.*short\.yml: not valid JSON \([^\n]*"a: 1\\n" is not valid JSON\): a config file is JSON/])
  const list = write(dir, 'list.json', '[1883]')
  t.same(await problems({ file: list }), [`${list}: must hold one JSON object, {"key": value, ...}`])
  // It hides every setting: its line alone, no list heading it (config check and the daemons say it so).
  const one = await failure(loadConfig(BROKER_CONFIG, { file: list }))
  t.equal(one.message, `${list}: must hold one JSON object, {"key": value, ...}`)
})

t.test('environment values: text settings stay text, others are JSON when they parse', async (t) => {
  const c = await loadConfig(BROKER_CONFIG, {
    env: {
      FAKEPHONE_BROKER_DATA_DIR: '1234',
      FAKEPHONE_BROKER_CONNECT_TIMEOUT: '2m',
      FAKEPHONE_BROKER_RATE_LIMIT_PER_SECOND: '0.5',
      FAKEPHONE_BROKER_HOST: undefined,
    },
  })
  t.match(c, { dataDir: '1234', connectTimeout: 120_000, rateLimit: { perSecond: 0.5 }, host: '127.0.0.1' })
})

t.test('a required setting that nobody set says where it can be set', async (t) => {
  const spec = {
    kind: 'thing',
    schema: z.strictObject({ name: z.string(), maxSize: z.number(), inner: z.strictObject({ depth: z.number() }).optional() }),
  }
  const dir = tempDir(t)
  const file = write(dir, 'thing.json', {})
  const nested = write(dir, 'nested.json', { name: 'x', maxSize: 1, inner: {}, extra: { a: 1 } })
  t.same(
    (await failure(loadConfig(spec, { file: nested }))).problems,
    [
      `inner.depth: missing; set it in ${nested} or as FAKEPHONE_THING_INNER_DEPTH`,
      `${nested}: extra: unknown setting (\`fakephone config env --kind thing\` lists every setting)`,
    ],
    'a nested key left out is missing, an unknown object is named by its key',
  )
  const err = await failure(loadConfig(spec, { file, flags: { values: {}, names: { name: '--name' } } }))
  t.same(err.problems, [
    `name: missing; set it in ${file}, as FAKEPHONE_THING_NAME or with --name`,
    `maxSize: missing; set it in ${file} or as FAKEPHONE_THING_MAX_SIZE`,
  ])
  const noFile = await failure(loadConfig(spec, { env: { FAKEPHONE_THING_NAME: 'x' } }))
  t.same(noFile.problems, ['maxSize: missing; set it in the config file or as FAKEPHONE_THING_MAX_SIZE'])
})

t.test('sizes (A1 quotas): bytes or text with a binary unit, and nothing else', (t) => {
  t.equal(SizeSchema.parse(1500), 1500)
  t.equal(SizeSchema.parse('5GB'), 5 * 1024 ** 3)
  t.equal(SizeSchema.parse('1.5 kb'), 1536)
  for (const bad of [-1, 1.5, '5 GiB', 'lots', null])
    t.match(SizeSchema.safeParse(bad).error?.issues[0]?.message, /not a size/, JSON.stringify(bad))
  t.end()
})

t.test('durations: milliseconds or text, and nothing else', (t) => {
  t.equal(DurationSchema.parse(1500), 1500)
  t.equal(DurationSchema.parse('1m30s'), 90_000)
  for (const bad of [-1, 1.5, true, null, {}])
    t.match(DurationSchema.safeParse(bad).error?.issues[0]?.message, /expected a duration/, JSON.stringify(bad))
  t.end()
})
