/**
 * A phone whose data directory's disk fills up while it runs: a switch the user flips cannot be saved. The user is
 * told why, naming the file, as every CLI command says a full disk (README "The phone and the CLI"), and the switch is
 * not in force: before, the phone acted on it (the status said mobile) while settings.json kept the old value, so the
 * next start quietly undid what the running phone had done. The disk is a real 1 MiB tmpfs, filled.
 */
import t from 'tap'
import { readFileSync, rmSync } from 'node:fs'
import { sendControl, serveControl } from '../../agent/control.js'
import type { SyncEngine } from '../../agent/sync/engine.js'
import { addDevice, agentConnected, firstFix, startAgent, startCloud } from '../fixtures/cloud.js'
import { NO_MOUNT, fill, smallDisk } from '../fixtures/full-disk.js'
import { onEnd } from '../fixtures/scope.js'

const disk = smallDisk(t, '1m')
const skip = disk === undefined && NO_MOUNT

t.test(
  'F1 S1: a switch flipped on a full disk is refused with the file named and left as it was; with room, it flips',
  { skip },
  async (t) => {
    if (disk === undefined) return
    const cloud = await startCloud(t)
    const secret = await addDevice(cloud, 'phone-a')
    const agent = await startAgent(t, cloud, 'phone-a', secret, { dataDir: disk })
    // The first fix reserves its seqs in settings.json: written before the disk fills, not while (it would free a page).
    const fix = firstFix(cloud, agent)
    await agentConnected(agent)
    await fix
    const server = await serveControl(agent, disk, cloud.logs.logger())
    onEnd(t, () => server.close())
    t.equal((await sendControl(disk, { op: 'sync', category: 'notes', on: false })).sync?.switches.categories.notes, false)
    // The switch starts a sync pass, which writes its state: a file replaced by a smaller one gives a page back. The disk
    // fills once the phone's own writes have gone quiet, so no page comes back after it.
    // The fixture gives the phone a cloud (cloudUrl): it has a sync engine.
    const sync = agent.sync as SyncEngine
    await sync.settled()
    const filler = fill(disk, 2 * 1024 * 1024)

    const full = /^the disk is full \(ENOSPC\): cannot write \S+\/(settings|sync-switches)\.json: ENOSPC/
    await t.rejects(sendControl(disk, { op: 'network', network: 'mobile' }), { code: 'ECONTROL', message: full })
    t.equal(agent.status().network, 'wifi', 'the phone is still on Wi-Fi, as its settings file says')
    t.match(JSON.parse(readFileSync(`${disk}/settings.json`, 'utf8')), { network: 'wifi' })
    await t.rejects(sendControl(disk, { op: 'switch', name: 'findDevice', on: false }), { message: full })
    t.equal(agent.status().findDevice, true)
    await t.rejects(sendControl(disk, { op: 'sync', category: 'photos', on: false }), { message: /sync-switches\.json: ENOSPC/ })
    t.match(agent.status().sync?.switches.categories, { photos: true, notes: false }, 'the one saved before the disk filled stays')
    t.ok(await cloud.logs.waitFor((l) => l.msg === 'control request refused' && /the disk is full/.test(String(l.error))))

    rmSync(filler)
    t.equal((await sendControl(disk, { op: 'network', network: 'mobile' })).network, 'mobile', 'with room again, it flips')
    t.match(JSON.parse(readFileSync(`${disk}/settings.json`, 'utf8')), { network: 'mobile' })
    t.equal((await sendControl(disk, { op: 'sync', category: 'photos', on: false })).sync?.switches.categories.photos, false)
  },
)
