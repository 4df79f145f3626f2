/**
 * Backups in a whole `fakephone fleet run` (issue 12; B1, S1), as a QA engineer meets them: the run's own broker, its
 * backup schedule (03:00 UTC) reached by moving the run's clock, and afterwards the cloud asked what it holds. Each phone
 * of the syncing group makes its backup, the cloud keeps it, and the report's transfers count it; the plain group's
 * phones make none.
 */
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConsoleClient } from '../../cli/console-client.js'
import { main } from '../../cli/main.js'
import { ManualClock } from '../../common/clock.js'
import { ConsoleBackupListSchema } from '../../common/cloud/backup-api.js'
import { planFleet } from '../../fleet/plan.js'
import { fleetAccount, fleetIds } from '../../fleet/provision.js'
import type { FleetReport } from '../../fleet/report.js'
import { checkScenario } from '../../fleet/scenario.js'
import { startCloud } from '../fixtures/cloud.js'
import { testIo } from '../fixtures/io.js'
import { tempDir } from '../fixtures/scope.js'

const HOUR = 3_600_000
const COUNT = 4
const SEED = 'b1'
const SCENARIO = {
  name: 'backups',
  groups: [
    { name: 'camera', heartbeat: { every: '1h' }, data: { contacts: 1 } },
    { name: 'plain', heartbeat: { every: '1h' } },
  ],
}

t.test(
  'B1 S1: a fleet run past 03:00 backs up each syncing phone once, into the cloud and the report; a plain phone makes none',
  async (t) => {
    const dir = tempDir(t)
    const work = join(dir, 'work')
    const scenario = join(dir, 's.json')
    writeFileSync(scenario, JSON.stringify(SCENARIO))
    const ids = fleetIds('fleet', COUNT)
    const groups = planFleet(checkScenario(SCENARIO, 's.json', dir), SEED, ids).phones.map((p) => p.group)
    const camera = ids.filter((_, i) => groups[i] === 'camera')
    t.ok(camera.length > 0 && camera.length < COUNT, `both groups have phones: ${groups.join(', ')}`)
    // The run starts at midnight on its clock; the cloud plans backups at 03:00.
    const clock = new ManualClock(Date.UTC(2026, 0, 1))
    const cli = testIo(clock)
    // The live line (a terminal's) says when every phone is up; --json keeps the log JSON, the report goes to its file.
    cli.io.tty = true
    const report = join(dir, 'report.json')
    const argv = ['fleet', 'run', '--count', String(COUNT), '--scenario', scenario, '--seed', SEED, '--duration', '4h']
    const done = main([...argv, '--work', work, '--report', report, '--json', '--log-level', 'info', '--workers', '1'], cli.io)
    // Each phone's first heartbeat goes out as it connects, after its status (backup on) on the same connection.
    await cli.waitForOut(`${COUNT}/${COUNT} connected, ${COUNT} heartbeats (${COUNT} acked)`)
    clock.advance(3 * HOUR)
    const made = (): number => cli.logs.lines.filter((l) => l.msg === 'backup made').length
    for (let i = 0; i < camera.length; i++) await cli.logs.waitFor((l) => l.msg === 'backup made' && made() > i)
    clock.advance(HOUR)
    t.equal(await done, 0, cli.err())
    // The cloud plans the plain phones' backups too (their backup switch is on): they refuse, saying why.
    const refused = cli.logs.lines.filter((l) => l.msg === 'backup plan refused')
    t.same(
      refused.map((l) => [l.device, l.reason]).sort(),
      ids.filter((id) => !camera.includes(id)).map((id) => [id, "no cloud is configured on this phone (the agent's --cloud)"]),
    )
    const r = JSON.parse(readFileSync(report, 'utf8')) as FleetReport
    t.match(r.transfers, { phones: camera.length, seeded: camera.length, uploaded: camera.length, lost: 0 })
    t.same(r.transfers.backups, { made: camera.length, failed: 0 }, 'one backup per syncing phone, counted in the report')
    t.ok(r.ok)

    // The cloud, after the run: its data directory kept in --work.
    const cloud = await startCloud(t, { dataDir: join(work, 'cloud') }, clock)
    const client = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
    for (const [i, id] of ids.entries()) {
      const account = fleetAccount('fleet', i, COUNT)
      const view = await client.read(ConsoleBackupListSchema, 'GET', `/api/accounts/${account}/backups`)
      const backups = view.backups.filter((b) => b.device === id)
      if (camera.includes(id)) {
        t.equal(backups.length, 1, `${id} (camera): its backup is in the cloud`)
        t.same(
          view.plans.filter((p) => p.device === id).map((p) => [p.state, p.backupId]),
          [['done', backups[0]?.id]],
          `${id}: the 03:00 plan answered by that backup`,
        )
      } else t.equal(backups.length, 0, `${id} (plain): no backup`)
    }
  },
)
