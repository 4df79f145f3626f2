/**
 * M3, M2: adds an exported account's records to this cloud, idempotently:
 * every record keeps its source id, so a record already here (identical) is
 * `present` and a second run imports nothing twice. Each record is stored in
 * its own transaction and answers with its own outcome: blobs must have been
 * uploaded first (transfer-routes.ts), quota is charged as for any store
 * (A1: over quota that record fails, nothing else is touched), a drive file
 * whose folder and name are taken by another file fails as a duplicate name.
 *
 * Devices come over as registrations with a fresh random secret nobody
 * knows: their history belongs to the account, but a phone signs in to this
 * cloud only once it is given a secret here, or once a migration brings its
 * verifier over (M2, device-move.ts). A device id registered to
 * another account on this cloud keeps its history out (that record fails).
 * Recycle-bin entries keep their deletion time, so their window runs on.
 */
import { randomBytes } from 'node:crypto'
import type { ImportOutcome, ImportReply, ImportRequestSchema } from '../../common/cloud/transfer-api.js'
import type { z } from 'zod'
import { one, pluck } from '../db.js'
import { checkNewDeviceId, hashSecret } from '../devices/registry.js'
import { registrationRefusal } from '../cloud/retirement-guard.js'
import type { TransferDeps } from './deps.js'
import { quoted } from '../../common/terminal-text.js'
import { plural } from '../../common/plural.js'

type Request = z.output<typeof ImportRequestSchema>

/** Runs `fn` in a transaction; its answer (or its error) is the record's outcome. */
type Recorder = (kind: ImportOutcome['kind'], id: string, fn: () => 'imported' | 'present') => void

/** Refuses the record being imported (its transaction rolls back; the message is its outcome's error). */
function fail(message: string): never {
  throw new Error(message)
}

export class AccountImporter {
  private readonly sql

  constructor(private readonly deps: TransferDeps) {
    const { db } = deps
    this.sql = {
      account: pluck<[id: string], number>(db, 'SELECT 1 FROM accounts WHERE id = ?'),
      addAccount: db.prepare<[id: string, tier: string, premiumUntil: number | null, now: number, createdAt: number]>(
        "INSERT INTO accounts (id, tier, premium_until, last_activity_at, last_activity, created_at) VALUES (?, ?, ?, ?, 'import', ?)",
      ),
      deviceAccount: pluck<[id: string], string>(db, 'SELECT account FROM devices WHERE id = ?'),
      addDevice: db.prepare<[id: string, account: string, hash: string, createdAt: number]>(
        'INSERT INTO devices (id, account, secret_hash, created_at) VALUES (?, ?, ?, ?)',
      ),
      addDeviceState: db.prepare<[id: string]>('INSERT INTO device_state (device_id) VALUES (?)'),
      item: db.prepare<[account: string, category: string, id: string], { sha256: string }>(
        'SELECT sha256 FROM sync_items WHERE account = ? AND category = ? AND id = ?',
      ),
      nextSeq: pluck<[account: string], number>(
        db,
        'INSERT INTO sync_counters (account, seq) VALUES (?, 1) ON CONFLICT (account) DO UPDATE SET seq = seq + 1 RETURNING seq',
      ),
      addItem: db.prepare<
        [
          account: string,
          category: string,
          id: string,
          sha256: string,
          size: number,
          meta: string,
          at: number,
          seq: number,
          by: string,
          del: number | null,
        ]
      >(
        `INSERT INTO sync_items (account, category, id, sha256, size, meta, modified_at, seq, changed_by, deleted_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      driveById: db.prepare<[id: string], { account: string; sha256: string }>('SELECT account, sha256 FROM drive_files WHERE id = ?'),
      driveByName: pluck<[account: string, folder: string, name: string], string>(
        db,
        'SELECT id FROM drive_files WHERE account = ? AND folder = ? AND name = ?',
      ),
      addDrive: db.prepare<
        [id: string, account: string, folder: string, name: string, sha256: string, size: number, c: number, u: number, by: string]
      >(
        `INSERT INTO drive_files (id, account, folder, name, sha256, size, created_at, updated_at, uploaded_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      backupById: db.prepare<[id: string], { account: string; sha256: string }>('SELECT account, sha256 FROM backups WHERE id = ?'),
      addBackup: db.prepare<
        [id: string, account: string, device: string, sha256: string, size: number, manifest: string, plan: string | null, at: number]
      >('INSERT INTO backups (id, account, device_id, sha256, size, manifest, plan_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      addLocation: db.prepare<
        [
          device: string,
          seq: number,
          at: number,
          lat: number,
          lon: number,
          acc: number,
          speed: number,
          bat: number,
          ch: number,
          net: string,
          rx: number,
        ]
      >(
        `INSERT OR IGNORE INTO locations (device_id, seq, at, lat, lon, accuracy, speed, battery, charging, network, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      addCommand: db.prepare<
        [
          id: string,
          device: string,
          type: string,
          envelope: string,
          state: string,
          reason: string | null,
          data: string | null,
          receipt: string | null,
          c: number,
          u: number,
          e: number,
          s: number | null,
        ]
      >(
        `INSERT OR IGNORE INTO commands
           (id, device_id, type, envelope, state, reason, data, receipt, created_at, updated_at, expires_at, sent_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      addNotification: db.prepare<
        [
          id: string,
          device: string,
          kind: string,
          title: string,
          body: string,
          c: number,
          e: number,
          state: string,
          sends: number,
          d: number | null,
          x: number | null,
        ]
      >(
        `INSERT OR IGNORE INTO notifications
           (id, device_id, kind, title, body, created_at, expires_at, state, sends, delivered_at, expired_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
    }
  }

  run(account: string, req: Request): ImportReply {
    // M1: a retiring cloud imports nothing once shut down, and no new account from its migration deadline on.
    const { cloud, clock } = this.deps
    const isNew = this.sql.account.get(account) === undefined
    const refused = registrationRefusal(cloud.retirement.plan(), account, isNew, clock.now())
    if (refused) throw refused
    // All records in one transaction, each still in its own (a savepoint: one that fails leaves the others): one commit
    // and one write of each changed page, not one per record (M2's bench: 1,301 records).
    const outcomes = this.deps.db.transaction(() => this.records(account, req))()
    const reply = this.reply(account, outcomes)
    if (reply.imported > 0) {
      this.deps.cloud.items.emit('bin', account)
      this.deps.cloud.cloudLog.record(
        account,
        'import',
        `imported ${plural(reply.imported, 'record')} (${reply.present} already here, ${reply.failed} refused)`,
        reply.imported,
      )
    }
    return reply
  }

  /** Every record of `req`, each in its own transaction, in the order a later record relies on: account, devices, data. */
  private records(account: string, req: Request): ImportOutcome[] {
    const { db } = this.deps
    const outcomes: ImportOutcome[] = []
    const record: Recorder = (kind, id, fn) => {
      try {
        outcomes.push({ kind, id, result: db.transaction(fn)() })
      } catch (err) {
        outcomes.push({ kind, id, result: 'failed', error: (err as Error).message })
      }
    }
    const ours = this.importAccountAndDevices(account, req, record)
    this.importStored(account, req, record)
    this.importHistory(account, req, record, ours)
    return outcomes
  }

  /** The account, made when missing, and its devices; answers the ids of the devices that are the account's now. */
  private importAccountAndDevices(account: string, req: Request, record: Recorder): Set<string> {
    const now = this.deps.clock.now()
    // The account: made when missing (from the request's tier and dates, or a free one); said only when asked or made.
    const exists = this.sql.account.get(account) !== undefined
    if (!exists || req.account !== undefined)
      record('account', account, () => {
        if (exists) return 'present'
        const a = req.account ?? { tier: 'free', premiumUntil: null, createdAt: now }
        this.sql.addAccount.run(account, a.tier, a.tier === 'premium' ? a.premiumUntil : null, now, a.createdAt)
        return 'imported'
      })
    const secretHashes = req.devices.map(() => hashSecret(randomBytes(32).toString('base64url')))
    const ours = new Set<string>()
    req.devices.forEach((d, i) =>
      record('device', d.id, () => {
        const owner = this.sql.deviceAccount.get(d.id)
        // M3: one account holds a device; the refusal says which, and the two ways on (a bag imported twice, say).
        if (owner !== undefined && owner !== account)
          fail(
            `device ${d.id} is registered to account ${quoted(owner)} on this cloud: import into that account, or remove ` +
              `the device there first (fakephone device remove ${d.id} --data DIR)`,
          )
        // A new device that could never sign in here (its id the console's MQTT user name) is refused as device add
        // refuses it, and its records with it.
        if (owner !== account) checkNewDeviceId(d.id)
        ours.add(d.id)
        if (owner === account) return 'present'
        this.sql.addDevice.run(d.id, account, secretHashes[i] as string, d.createdAt)
        this.sql.addDeviceState.run(d.id)
        return 'imported'
      }),
    )
    return ours
  }

  /**
   * A record's blob, as any store takes one: here at the size the record says, its bytes charged to the account's quota
   * (A1), and referenced by the account.
   */
  private storeBlob(account: string, sha256: string, size: number, what: string): void {
    const { accounts, blobs } = this.deps.cloud
    const stored = blobs.size(sha256)
    if (stored === undefined) fail(`blob ${sha256} has not been uploaded; upload it first`)
    if (stored !== size) fail(`the record says ${size} bytes but blob ${sha256} has ${stored}`)
    accounts.charge(account, size, what)
    blobs.ref(account, sha256)
  }

  /** The records that hold a blob: sync items (recycle-bin entries among them), drive files and backups. */
  private importStored(account: string, req: Request, record: Recorder): void {
    for (const it of req.items)
      record('item', `${it.category}/${it.id}`, () => {
        const here = this.sql.item.get(account, it.category, it.id)
        if (here) {
          if (here.sha256 === it.sha256) return 'present'
          fail(`a different version of ${it.category}/${it.id} is here already (SHA-256 ${here.sha256})`)
        }
        this.storeBlob(account, it.sha256, it.size, `${it.category}/${it.id} (${it.size} bytes)`)
        const seq = one(this.sql.nextSeq, account)
        this.sql.addItem.run(
          account,
          it.category,
          it.id,
          it.sha256,
          it.size,
          JSON.stringify(it.meta),
          it.modifiedAt,
          seq,
          it.changedBy,
          it.deletedAt,
        )
        return 'imported'
      })
    for (const f of req.drive)
      record('drive', f.id, () => {
        const byId = this.sql.driveById.get(f.id)
        if (byId) {
          if (byId.account === account && byId.sha256 === f.sha256) return 'present'
          fail(`drive file id ${quoted(f.id)} is taken here by another file`)
        }
        const taken = this.sql.driveByName.get(account, f.folder, f.name)
        if (taken !== undefined) fail(`duplicate name: ${f.folder} already holds a file named ${quoted(f.name)} (id ${taken})`)
        this.storeBlob(account, f.sha256, f.size, `drive file ${quoted(f.name)}`)
        this.sql.addDrive.run(f.id, account, f.folder, f.name, f.sha256, f.size, f.createdAt, f.updatedAt, f.uploadedBy)
        return 'imported'
      })
    for (const b of req.backups)
      record('backup', b.id, () => {
        const here = this.sql.backupById.get(b.id)
        if (here) {
          if (here.account === account && here.sha256 === b.sha256) return 'present'
          fail(`backup id ${quoted(b.id)} is taken here by another package`)
        }
        this.storeBlob(account, b.sha256, b.size, `backup ${b.id}`)
        this.sql.addBackup.run(b.id, account, b.device, b.sha256, b.size, JSON.stringify(b.manifest), b.planId, b.createdAt)
        return 'imported'
      })
  }

  /** A device's history: its locations, commands and notifications, each refused for a device that is not the account's. */
  private importHistory(account: string, req: Request, record: Recorder, ours: ReadonlySet<string>): void {
    const mine = (device: string): void => {
      if (ours.has(device)) return
      const owner = this.sql.deviceAccount.get(device)
      if (owner !== account)
        fail(`device ${device} is not a device of ${account} here${owner === undefined ? '' : `: account ${quoted(owner)} holds it`}`)
    }
    const byDevice = new Map<string, typeof req.locations>()
    for (const l of req.locations) byDevice.set(l.device, [...(byDevice.get(l.device) ?? []), l])
    for (const [device, fixes] of byDevice)
      record('locations', device, () => {
        mine(device)
        let added = 0
        for (const l of fixes)
          added += this.sql.addLocation.run(
            device,
            l.seq,
            l.at,
            l.lat,
            l.lon,
            l.accuracy,
            l.speed,
            l.battery,
            l.charging ? 1 : 0,
            l.network,
            l.receivedAt,
          ).changes
        return added > 0 ? 'imported' : 'present'
      })
    for (const c of req.commands)
      record('command', c.id, () => {
        mine(c.device)
        const json = (v: object | null): string | null => (v === null ? null : JSON.stringify(v))
        const { changes } = this.sql.addCommand.run(
          c.id,
          c.device,
          c.type,
          JSON.stringify(c.command),
          c.state,
          c.reason,
          json(c.data),
          json(c.receipt),
          c.createdAt,
          c.updatedAt,
          c.expiresAt,
          c.sentAt,
        )
        return changes > 0 ? 'imported' : 'present'
      })
    for (const n of req.notifications)
      record('notification', n.id, () => {
        mine(n.deviceId)
        const { changes } = this.sql.addNotification.run(
          n.id,
          n.deviceId,
          n.kind,
          n.title,
          n.body,
          n.createdAt,
          n.expiresAt,
          n.state,
          n.sends,
          n.deliveredAt,
          n.expiredAt,
        )
        return changes > 0 ? 'imported' : 'present'
      })
  }

  private reply(account: string, outcomes: ImportOutcome[]): ImportReply {
    const count = (r: ImportOutcome['result']): number => outcomes.filter((o) => o.result === r).length
    return {
      now: this.deps.clock.now(),
      account,
      imported: count('imported'),
      present: count('present'),
      failed: count('failed'),
      outcomes,
    }
  }
}
