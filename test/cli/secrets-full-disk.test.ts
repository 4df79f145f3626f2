/**
 * A secret file on a disk that is full (common/secret-file): `device add --secret-out` and `fleet provision --out` write
 * the secrets whole before any device is registered, so a file that cannot be written refuses with nothing registered;
 * never registered devices whose secrets are nowhere. The disk is a real full filesystem: a 64 KiB tmpfs, filled. A
 * new file cannot be a link to /dev/full (the file is made with O_EXCL), so this needs a mount; where mounting is not
 * allowed (not root, no CAP_SYS_ADMIN) the test is skipped, saying so.
 */
import t from 'tap'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { openDb } from '../../broker/db.js'
import { run } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'
import { NO_MOUNT, fill, smallDisk } from '../fixtures/full-disk.js'

const disk = smallDisk(t, '64k')
if (disk) fill(disk, 128 * 1024)
const skip = disk === undefined && NO_MOUNT

t.test('a secret file on a full disk refuses with no device registered, never one whose secret is nowhere', { skip }, async (t) => {
  if (disk === undefined) return
  const dir = tempDir(t)
  const data = join(dir, 'cloud')
  openDb(data).close() // the broker's data directory, as its first start leaves it (`device list` reads only such a one)
  const keys = join(dir, 'keys')
  const secretOut = join(disk, 'hall.secret')
  const add = await run(['device', 'add', 'pi-hall', '--data', data, '--keys', keys, '--secret-out', secretOut])
  t.equal(add.code, 1)
  t.match(add.err, new RegExp(`^error: --secret-out ${secretOut}: cannot write it: ENOSPC: .*; no device was registered\n$`))
  t.notOk(existsSync(secretOut), 'no part-written file is left')
  const out = join(disk, 'fleet.json')
  const fleet = await run(['fleet', 'provision', '--count', '3', '--account-prefix', 'qa', '--data', data, '--keys', keys, '--out', out])
  t.equal(fleet.code, 1)
  t.match(fleet.err, new RegExp(`^error: --out ${out}: cannot write it: ENOSPC: .*; no device was registered\n$`))
  t.notOk(existsSync(out))
  const list = await run(['device', 'list', '--data', data, '--json'])
  t.same(JSON.parse(list.out), { devices: [] }, 'no device is registered without its secret')
  // With room again, the same commands succeed.
  rmSync(join(disk, 'filler'))
  t.equal((await run(['device', 'add', 'pi-hall', '--data', data, '--keys', keys, '--secret-out', secretOut])).code, 0)
  t.equal(
    (await run(['fleet', 'provision', '--count', '3', '--account-prefix', 'qa', '--data', data, '--keys', keys, '--out', out])).code,
    0,
  )
})
