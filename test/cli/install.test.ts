/** `fakephone install --prefix DIR`: units fitted to this installation, the broker user, configs that are valid and never overwritten. */
import t from 'tap'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { defaultBin, execLine, packageRoot, renderUnit, SHIPPED_BIN } from '../../cli/install.js'
import { run } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

t.test('install writes both units, the sysusers entry and valid configs under the prefix, then says what to run', async (t) => {
  const prefix = tempDir(t)
  const r = await run([
    'install',
    '--prefix',
    prefix,
    '--bin',
    '/opt/node/bin/node /opt/fakephone/dist/cli/main.js',
    '--agent',
    'kitchen-pi',
    '--agent',
    'attic',
    '--location',
    'gpsd',
  ])
  t.equal(r.code, 0, r.err)
  const written = [
    'etc/systemd/system/fakephone-broker.service',
    'etc/systemd/system/fakephone-agent@.service',
    'etc/sysusers.d/fakephone.conf',
    'etc/fakephone/broker.json',
    'etc/fakephone/agent-kitchen-pi.json',
    'etc/fakephone/agent-attic.json',
  ]
  t.same(
    r.out.split('\n').filter((l) => l.startsWith('wrote')),
    written.map((f) => `wrote  ${join(prefix, f)}`),
  )
  t.match(r.out, /systemctl enable --now fakephone-broker\n/)
  t.match(
    r.out,
    new RegExp(
      String.raw`agent-kitchen-pi\.secret \(mode 0600\) and the owner's public key as\n {2}# "ownerKey" in .*/etc/fakephone/` +
        String.raw`agent-kitchen-pi\.json \(without it the phone refuses every remote command\), then:\n {2}systemctl enable --now ` +
        String.raw`fakephone-agent@kitchen-pi\n`,
    ),
    'the next steps name the owner key, without which a phone obeys no one',
  )
  const unit = readFileSync(join(prefix, 'etc/systemd/system/fakephone-agent@.service'), 'utf8')
  t.match(
    unit,
    /\nExecStart=\/opt\/node\/bin\/node \/opt\/fakephone\/dist\/cli\/main\.js agent --config \/etc\/fakephone\/agent-%i\.json\n/,
    'ExecStart runs this installation',
  )
  t.equal(statSync(join(prefix, 'etc/fakephone/broker.json')).mode & 0o777, 0o644)
  t.same(JSON.parse(readFileSync(join(prefix, 'etc/fakephone/agent-attic.json'), 'utf8')), {
    id: 'attic',
    broker: 'mqtt://127.0.0.1:1883',
    push: 'ws://127.0.0.1:8080/push',
    dataDir: '/var/lib/fakephone-agent-attic',
    location: 'gpsd',
    interval: '30s',
  })
  for (const config of ['broker.json', 'agent-kitchen-pi.json', 'agent-attic.json']) {
    const file = join(prefix, 'etc/fakephone', config)
    t.equal((await run(['config', 'check', file])).code, 0, `${config} passes config check`)
  }
  t.match(readFileSync(join(prefix, 'etc/sysusers.d/fakephone.conf'), 'utf8'), /^u fakephone - "fakephone broker" \/var\/lib\/fakephone$/m)
})

t.test('a second install refreshes the units but keeps the configs an operator may have edited', async (t) => {
  const prefix = tempDir(t)
  await run(['install', '--prefix', prefix, '--bin', '/usr/bin/fakephone', '--agent', 'pi'])
  const config = join(prefix, 'etc/fakephone/agent-pi.json')
  writeFileSync(config, '{"id":"pi","location":"fixed:1,2"}\n')
  const again = await run(['install', '--prefix', prefix, '--bin', '/usr/local/bin/fakephone', '--agent', 'pi'])
  t.match(again.out, new RegExp(`kept \\(exists\\)  ${config}\n`))
  t.equal(readFileSync(config, 'utf8'), '{"id":"pi","location":"fixed:1,2"}\n', 'the edited config is untouched')
  t.match(
    readFileSync(join(prefix, 'etc/systemd/system/fakephone-broker.service'), 'utf8'),
    /\nExecStart=\/usr\/local\/bin\/fakephone broker /,
  )
})

t.test('install refuses a relative --bin, a bad device id and a bad location, and warns of a home folder or /tmp', async (t) => {
  const prefix = tempDir(t)
  t.match(
    (await run(['install', '--prefix', prefix, '--bin', 'fakephone'])).err,
    /--bin must start with an absolute path \(systemd does no PATH lookup\): "fakephone"/,
  )
  t.match(
    (await run(['install', '--prefix', prefix, '--agent', 'Kitchen Pi'])).err,
    /invalid device id "Kitchen Pi": device id: 1-63 of a-z, 0-9 and "-", not starting with "-"\n$/,
  )
  t.match((await run(['install', '--prefix', prefix, '--agent', 'pi', '--location', 'moon'])).err, /--location: "moon" is not a location/)
  const fromHome = await run(['install', '--prefix', prefix, '--bin', '/usr/bin/node /home/pi/fakephone/dist/cli/main.js'])
  t.equal(fromHome.code, 0)
  t.match(
    fromHome.err,
    new RegExp(
      String.raw`^warning: \/home\/pi\/fakephone\/dist\/cli\/main\.js is under \/home, \/root or \/run\/user, which ` +
        String.raw`ProtectHome=yes hides from the services`,
    ),
    'a checkout in a home folder would not start under the units',
  )
  const fromTmp = await run(['install', '--prefix', prefix, '--bin', '/usr/bin/node /tmp/fakephone/dist/cli/main.js'])
  t.equal(fromTmp.code, 0)
  t.match(
    fromTmp.err,
    /^warning: \/tmp\/fakephone\/dist\/cli\/main\.js is under \/tmp or \/var\/tmp, which PrivateTmp=yes replaces with an empty folder/,
    'a checkout under /tmp would not start under the units',
  )
  t.equal((await run(['install', '--prefix', prefix])).code, 0, 'the default --bin is usable')
  // sysfs refuses a new folder to root too (EPERM; EACCES for anyone else): as /etc does to an install without sudo.
  const refused = await run(['install', '--prefix', '/sys/fakephone-install-test'])
  t.equal(refused.code, 1)
  t.match(
    refused.err,
    // A checkout under /tmp (as a CI clone may be) adds its warning line first; the error is still one line, no stack.
    /(^|\n)error: E(ACCES|PERM): .*, mkdir '\/sys\/fakephone-install-test': run it as a user who may \(e\.g\. with sudo\)\n$/,
    'a path this user may not write is one error line, not a stack',
  )
  t.notMatch(refused.err, /\n\s+at /, 'no stack trace')
  t.match(
    readFileSync(join(prefix, 'etc/systemd/system/fakephone-broker.service'), 'utf8'),
    `\nExecStart=${execLine(defaultBin())} broker `,
  )
})

t.test(
  'a GPX track is written with its absolute path (the agent runs in its state directory), and one the units cannot see is warned of',
  async (t) => {
    const prefix = tempDir(t)
    const bin = ['--bin', '/usr/bin/fakephone']
    const relative = await run(['install', '--prefix', prefix, ...bin, '--agent', 'walker', '--location', 'gpx:tracks/walk.gpx'])
    t.equal(relative.code, 0, relative.err)
    t.equal(
      JSON.parse(readFileSync(join(prefix, 'etc/fakephone/agent-walker.json'), 'utf8')).location,
      `gpx:${resolve('tracks/walk.gpx')}`,
      "taken from where install ran, not from the agent's state directory",
    )
    // Where the checkout lies decides whether that one is warned of (a CI clone may be under /tmp); one under /opt is not.
    const opt = await run(['install', '--prefix', prefix, ...bin, '--agent', 'rambler', '--location', 'gpx:/opt/tracks/walk.gpx'])
    t.equal(opt.code, 0, opt.err)
    t.equal(opt.err, '', 'a track the units can see is no trouble')
    const home = await run(['install', '--prefix', prefix, ...bin, '--agent', 'hiker', '--location', 'gpx:/home/pi/walk.gpx'])
    t.equal(home.code, 0)
    t.equal(
      home.err,
      'warning: /home/pi/walk.gpx is under /home, /root or /run/user, which ProtectHome=yes hides from the services: put the ' +
        'GPX file elsewhere (under /etc/fakephone or /opt)\n',
    )
    const tmp = await run(['install', '--prefix', prefix, ...bin, '--agent', 'jogger', '--location', 'gpx:/tmp/walk.gpx'])
    t.match(tmp.err, /^warning: \/tmp\/walk\.gpx is under \/tmp or \/var\/tmp, which PrivateTmp=yes .*: put the GPX file elsewhere/)
  },
)

t.test('a prefix where a folder cannot be made fails at once with one error line naming the path and why', async (t) => {
  // /proc refuses a new entry with ENOENT, to root as well: Node's recursive mkdir tried it again for ever there.
  const proc = await run(['install', '--prefix', '/proc/self/fakephone-install-test', '--bin', '/usr/bin/fakephone'])
  t.equal(proc.code, 1)
  t.equal(
    proc.err,
    'error: --prefix /proc/self/fakephone-install-test: cannot install there: ENOENT: no such file or directory, mkdir ' +
      "'/proc/self/fakephone-install-test'\n",
  )
  const file = join(tempDir(t), 'file')
  writeFileSync(file, '')
  const through = await run(['install', '--prefix', join(file, 'x'), '--bin', '/usr/bin/fakephone'])
  t.equal(through.code, 1)
  t.match(
    through.err,
    /^error: --prefix .*file\/x: cannot install there: ENOTDIR: not a directory, mkdir '.*file\/x\/etc\/systemd\/system'\n$/,
  )
  const prefix = tempDir(t)
  mkdirSync(join(prefix, 'etc/systemd/system/fakephone-broker.service'), { recursive: true })
  const dirInTheWay = await run(['install', '--prefix', prefix, '--bin', '/usr/bin/fakephone'])
  t.equal(dirInTheWay.code, 1)
  t.match(dirInTheWay.err, /^error: --prefix .*: cannot install there: EISDIR: .*fakephone-broker\.service'\n$/)
})

t.test('ExecStart= words are quoted only when they must be; the shipped units say where to adapt them', (t) => {
  t.equal(
    execLine(['/usr/bin/node', '/opt/fake phone/main.js', 'say "hi"\\']),
    '/usr/bin/node "/opt/fake phone/main.js" "say \\"hi\\"\\\\"',
  )
  t.same(defaultBin('/opt/fp'), [process.execPath, '/opt/fp/dist/cli/main.js'])
  t.throws(() => renderUnit('[Service]\nExecStart=/bin/true\n', ['/x']), new RegExp(`no "ExecStart=${SHIPPED_BIN} \\.\\.\\." line`))
  t.throws(() => packageRoot('/'), /no systemd\/ folder above \/: is this a fakephone installation\?/)
  t.end()
})
