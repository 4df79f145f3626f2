/**
 * Cloud backup from the command line (B1-B4): the phone's backup screen and the console's views, in-process against a real broker and
 * agent.
 */
import t from 'tap'
import { serveControl } from '../../agent/control.js'
import { brokerOptions, BrokerConfigSchema } from '../../broker/config.js'
import type { ManualClock } from '../../common/clock.js'
import { addDevice, agentConnected, startAgent, startCloud } from '../fixtures/cloud.js'
import { backupReady, HOUR } from '../fixtures/backup.js'
import { run } from '../fixtures/io.js'
import { onEnd, tempDir } from '../fixtures/scope.js'

t.test(
  'B1-B4 from the command line: phone backup status/now/list/restore/off --delete-data; console backups, backup show/delete/off',
  async (t) => {
    const cloud = await startCloud(t)
    const clock = cloud.clock as ManualClock
    const dataDir = tempDir(t, 'fakephone-phone-')
    // A heartbeat a day: the test jumps the clock by hours, and at the usual 30 s the jumps fired 10,000 heartbeats.
    const agent = await startAgent(t, cloud, 'phone-a', await addDevice(cloud, 'phone-a'), {
      dataDir,
      systemProfile: true,
      heartbeatMs: 24 * HOUR,
    })
    const control = await serveControl(agent, dataDir, cloud.logs.logger())
    onEnd(t, () => control.close())
    await agentConnected(agent)
    await backupReady(cloud, 'phone-a')
    const phone = ['phone', '--data', dataDir, 'backup']
    const api = ['console', '--api', cloud.apiUrl, '--data', cloud.dataDir]

    t.match((await run([...phone, 'status'])).out, /cloud backup\s+on\nlast backup\s+never\nplans refused 0 this run/)
    t.match((await run([...api, 'backups', 'alice'])).out, /No backups\.\n\nNo backup plans yet\.\n$/)
    await agent.setNetwork('none')
    t.match((await run([...phone, 'now'])).err, /cannot back up: the cloud service is off, there is no network/)
    t.match((await run([...phone, 'status'])).out, /last error\s+cannot back up/)
    await agent.setNetwork('wifi')
    const now = await run([...phone, 'now'], clock)
    t.match(now.out, /^Backup \S+ stored \(\d+ bytes\)\.\n$/)
    const id = /Backup (\S+) stored/.exec(now.out)?.[1] as string
    t.match((await run([...phone, 'status'])).out, new RegExp(`last backup\\s+${id} at 2026-01-01 00:00:00 UTC`))
    t.match(
      (await run([...phone, 'list'], clock)).out,
      new RegExp(
        `BACKUP\\s+DEVICE\\s+CREATED \\(UTC\\)\\s+SIZE\\s+PARTS\\n${id}\\s+phone-a\\s+2026-01-01 00:00:00 \\(0s ago\\)\\s+\\d+ ` +
          `B\\s+settings:8 apps:\\d+ launcher:\\d+ wifi:\\d+ appData:\\d+`,
      ),
    )
    t.match(
      JSON.parse((await run(['phone', '--data', dataDir, '--json', 'backup', 'list'])).out),
      { backups: [{ id }] },
      '--json is an object',
    )
    t.match(
      JSON.parse((await run(['phone', '--data', dataDir, '--json', 'backup', 'status'])).out),
      { lastBackupId: id },
      'status --json is the status object',
    )
    t.match(
      (await run([...phone, 'restore'])).out,
      new RegExp(`^Restored backup ${id} of phone-a \\(2026-01-01 00:00:00 UTC\\): \\d+ files put back\\.\\n$`),
    )
    t.match((await run([...phone, 'restore', id])).out, /Restored backup/)
    t.match((await run([...phone, 'restore', 'nope'])).err, /no backup "nope"/)

    clock.advance(3 * HOUR)
    await new Promise((resolve) => agent.backup.once('made', resolve))
    const view = await run([...api, 'backups', 'alice'])
    t.match(view.out, /^state\s+active\nnext plan at\s+2026-01-02 03:00:00 UTC\n\nBACKUP/)
    t.match(view.out, /PLAN\s+DEVICE\s+PLANNED \(UTC\)\s+STATE\s+REASON\n\S+\s+phone-a\s+2026-01-01 03:00:00\s+done/)
    t.match(JSON.parse((await run([...api, '--json', 'backups', 'alice'])).out), { account: 'alice', retention: { state: 'active' } })
    t.match((await run([...api, 'backups', 'nobody'])).err, /account "nobody" not found/)
    const show = await run([...api, 'backup', 'show', id])
    t.match(
      show.out,
      new RegExp(
        `^backup\\s+${id}\\ndevice\\s+phone-a \\(account alice\\)\\ncreated\\s+2026-01-01 00:00:00 UTC[\\s\\S]*state\\s+active\\n\\n` +
          `PART\\s+FILES\\s+BYTES\\s+COUNT\\nsettings\\s+1\\s+\\d+\\s+8\\napps`,
      ),
    )
    t.match(
      (await run([...api, 'backup', 'delete', id])).out,
      new RegExp(`^Deleted backup ${id} \\(\\d+ bytes freed\\); it cannot be recovered\\.\\n$`),
    )
    t.match((await run([...api, 'backup', 'off', 'phone-a'])).err, /add --delete-data to confirm/)
    t.match(
      (await run([...api, 'backup', 'off', 'phone-a', '--delete-data'])).out,
      /^Cloud backup of phone-a is off; 1 backup deleted \(\d+ bytes freed\), for good\.\n$/,
    )
    t.match((await run([...api, 'backups', 'alice'])).out, /No backups\./)

    t.match((await run([...phone, 'on'])).out, 'Cloud backup is on.')
    await run([...phone, 'now'])
    t.match((await run([...phone, 'off'])).out, 'Cloud backup is off. Existing backups stay in the cloud.')
    t.match((await run([...phone, 'status'])).out, /cloud backup\s+off/)
    t.match(
      (await run([...phone, 'off', '--delete-data'])).out,
      /^Cloud backup is off\. 1 backup deleted from the cloud \(\d+ bytes freed\), for good: nothing deleted can be recovered\.\n$/,
    )
    t.match(
      (await run([...api, 'backups', 'alice'])).out,
      /^state\s+active\nnext plan at\s+none: no phone of the account has cloud backup and the cloud service on \(B2\)\n/,
      'B2: the only phone has backup off, so the console says no plan comes and why (not the next 03:00)',
    )

    const off = new Promise((resolve) => cloud.broker.cloud.accounts.once('service-off', resolve))
    await agent.setSwitch('cloudService', false)
    await off
    clock.advance(80 * HOUR)
    t.match(
      (await run([...api, 'backups', 'alice'])).out,
      new RegExp(
        String.raw`^state\s+read-only\nservice off at\s+2026-01-01 03:00:00 UTC\nread-only from\s+2026-01-04 03:00:00 UTC\ncleaning ` +
          String.raw`from\s+2026-01-11 03:00:00 UTC\nnext batch at\s+-\nnext plan at\s+none: the cloud service ` +
          String.raw`of the account is off \(B2\)\n`,
      ),
    )
  },
)

t.test('B1 config: --backup-cron and the clean-up settings reach the cloud; a bad expression is refused with the reason', async (t) => {
  const c = BrokerConfigSchema.parse({
    backupCron: '30 2 * * 1',
    backupCleanupDelay: '3d',
    backupCleanupBatch: 5,
    backupCleanupEvery: '12h',
  })
  t.match(brokerOptions(c).cloud.backup, {
    cron: '30 2 * * 1',
    retention: { readOnlyAfterMs: 72 * HOUR, cleanupDelayMs: 72 * HOUR, batchSize: 5, batchIntervalMs: 12 * HOUR },
  })
  t.equal(brokerOptions(BrokerConfigSchema.parse({})).cloud.backup.cron, '0 3 * * *', 'daily at 03:00 by default')
  const bad = BrokerConfigSchema.safeParse({ backupCron: '61 * * * *' })
  t.notOk(bad.success)
  t.match(bad.error?.issues[0]?.message, /cron expression "61 \* \* \* \*"/)
  const flag = await run(['broker', '--data', tempDir(t), '--mqtt-port', '0', '--http-port', '0', '--backup-cron', 'every day'])
  t.match(flag.err, /--backup-cron: cron expression "every day" must have five fields/)
  t.not(flag.code, 0)
})
