/**
 * M3: `fakephone console export`: an account's whole cloud as a BagIt bag,
 * read through the console API (the export route for the records, the blob
 * route for the bytes). Every blob is checked against its SHA-256 as it is
 * written, so a bag never holds bytes the cloud did not have. The layout is
 * bag-layout.ts (and docs/EXPORT.md).
 */
import { BagWriter, type BagSummary } from '../../common/bagit/write.js'
import { AccountSnapshotSchema, type AccountSnapshot, type Transferred } from '../../common/cloud/transfer-api.js'
import { ConsoleApiError, type ConsoleClient } from '../console-client.js'
import { UserError } from '../io.js'
import { EXPORT_FORMAT, SIDECAR, backupPath, devicePath, drivePaths, itemPath, type AccountFile } from './bag-layout.js'
import { toGeoJson, toGpx } from './location-formats.js'
import type { Progress } from './progress.js'
import { forTerminal } from '../../common/terminal-text.js'

export interface ExportResult extends BagSummary {
  account: string
  /** Synced items (bin entries included): bag-info.txt's Fakephone-Items. */
  items: number
  /** A cloud export's drive files and backup packages (Fakephone-Drive-Files, Fakephone-Backups); absent for a phone's. */
  driveFiles?: number
  backups?: number
  /** Files an interrupted run had written that this one checked and kept (not read from the source again). */
  kept: { files: number; bytes: number }
}

const enc = encodeURIComponent

/** Reads the account's records from the cloud. */
export async function readSnapshot(api: ConsoleClient, account: string): Promise<AccountSnapshot> {
  return api.read(AccountSnapshotSchema, 'GET', `/api/accounts/${enc(account)}/export`)
}

/**
 * Writes the account into a new bag at `dir`, or (`resumed`) carries on the bag an interrupted run left there: a blob
 * already written whose SHA-256 is the cloud's is kept, not downloaded again. `progress` is made once the totals are
 * known.
 */
export async function exportAccount(
  api: ConsoleClient,
  account: string,
  dir: string,
  source: string,
  progress: (total: { items: number; bytes: number }) => Progress,
  resumed = false,
): Promise<ExportResult> {
  const snap = await readSnapshot(api, account)
  const drive = drivePaths(snap.drive)
  const bag = await (resumed ? BagWriter.resume(dir) : BagWriter.create(dir))
  const kept = { files: 0, bytes: 0 }
  const blobs = [
    ...snap.items.map((i) => ({ path: itemPath(i), sha256: i.sha256, size: i.size, sidecar: i as unknown })),
    ...snap.drive.map((f) => ({ path: drive.get(f.id) as string, sha256: f.sha256, size: f.size, sidecar: undefined })),
    ...snap.backups.map((b) => ({ path: backupPath(b), sha256: b.sha256, size: b.size, sidecar: undefined })),
  ]
  const p = progress({ items: blobs.length, bytes: blobs.reduce((n, b) => n + b.size, 0) })
  const download = async (b: (typeof blobs)[number]): Promise<void> => {
    // Over node:http, the answer's own stream: fetch's web streams copied every chunk again (M2 measured it on 64 MiB).
    const res = await api.stream('GET', `/api/accounts/${enc(snap.account.id)}/blobs/${b.sha256}/content`)
    const written = await bag
      .add(b.path, res, (n) => p.add(n))
      .catch((err: NodeJS.ErrnoException) => {
        // The answer broke off (node:http's 'aborted'): which file, and that a new run is safe; any other failure is its own.
        if (err.code !== 'ECONNRESET') throw err
        throw new ConsoleApiError(
          0,
          `${forTerminal(b.path)}: the broker's answer broke off (${err.message}); nothing at the cloud changed, run the export again`,
        )
      })
    if (written.sha256 !== b.sha256)
      // A drive file's name, in the path, is whoever made the file's: shown escaped, as every name from others.
      throw new UserError(
        `${forTerminal(b.path)} arrived as ${written.sha256}, not the ${b.sha256} the cloud holds; the export stopped, run it again`,
      )
  }
  try {
    for (const b of blobs) {
      if (await bag.keep(b.path, b.sha256, b.size)) {
        kept.files++
        kept.bytes += b.size
        p.add(b.size)
      } else await download(b)
      if (b.sidecar !== undefined) await bag.addJson(b.path + SIDECAR, b.sidecar)
      p.item()
    }
  } finally {
    p.done()
  }
  const file: AccountFile = { format: EXPORT_FORMAT, exportedAt: snap.now, source, account: snap.account, devices: snap.devices }
  await bag.addJson('account.json', file)
  await bag.addJson(
    'drive/files.json',
    snap.drive.map((f) => ({ ...f, path: drive.get(f.id) as string })),
  )
  await bag.addJson(
    'backups/backups.json',
    snap.backups.map((b) => ({ ...b, path: backupPath(b) })),
  )
  for (const d of snap.devices) {
    const fixes = snap.locations.filter((l) => l.device === d.id)
    await bag.add(devicePath(d.id, 'locations.gpx'), toGpx(d.id, fixes))
    await bag.addJson(devicePath(d.id, 'locations.geojson'), toGeoJson(fixes))
    await bag.addJson(
      devicePath(d.id, 'commands.json'),
      snap.commands.filter((c) => c.device === d.id),
    )
    await bag.addJson(
      devicePath(d.id, 'notifications.json'),
      snap.notifications.filter((n) => n.deviceId === d.id),
    )
  }
  await bag.addJson('cloud-log.json', snap.log)
  const summary = await bag.finish(
    {
      'Source-Organization': 'fakephone',
      'Bag-Software-Agent': 'fakephone',
      'External-Description': `fakephone cloud export of account ${snap.account.id}`,
      'External-Identifier': `${snap.account.id}@${source}`,
      'Fakephone-Format': EXPORT_FORMAT,
      'Fakephone-Account': snap.account.id,
      'Fakephone-Source': source,
      'Fakephone-Exported-At': new Date(snap.now).toISOString(),
      'Fakephone-Items': String(snap.items.length),
      'Fakephone-Drive-Files': String(snap.drive.length),
      'Fakephone-Backups': String(snap.backups.length),
    },
    snap.now,
  )
  // Only a bag written to its end counts as the account's data out (M1 keeps it readable past its deadline).
  await api.request(`/api/accounts/${enc(snap.account.id)}/transferred`, {
    how: 'export',
    detail: `bag of ${summary.files} files`,
  } satisfies Transferred)
  return {
    ...summary,
    account: snap.account.id,
    items: snap.items.length,
    driveFiles: snap.drive.length,
    backups: snap.backups.length,
    kept,
  }
}
