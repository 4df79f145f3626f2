/**
 * M3: `fakephone phone export`: the phone's own photos, contacts, notes and
 * recordings as a bag in the same layout as a cloud export (bag-layout.ts),
 * read straight from the phone's data directory (no agent needed). Each
 * file keeps its bytes (photos their EXIF); its sidecar says what the phone
 * read from it. `console import` takes such a bag into a cloud account.
 */
import { createReadStream } from 'node:fs'
import type { Clock } from '../../common/clock.js'
import { BagWriter } from '../../common/bagit/write.js'
import type { ItemRecord } from '../../common/cloud/transfer-api.js'
import { PhoneFiles } from '../../agent/phone-data/store.js'
import { CATEGORIES } from '../../agent/phone-data/types.js'
import { EXPORT_FORMAT, SIDECAR, itemPath, type AccountFile } from './bag-layout.js'
import type { ExportResult } from './account-export.js'
import type { Progress } from './progress.js'

/**
 * Writes the phone's data into a new bag at `dir`; `resumed` carries on the bag an interrupted run left there, every
 * file written again (they are read from this disk, nothing is downloaded), what is no longer on the phone removed.
 */
export async function exportPhone(
  dataDir: string,
  dir: string,
  clock: Clock,
  progress: (total: { items: number; bytes: number }) => Progress,
  resumed = false,
): Promise<ExportResult> {
  const phone = new PhoneFiles({ dataDir, clock })
  const local = (await Promise.all(CATEGORIES.map((c) => phone.list(c)))).flat()
  const now = clock.now()
  const bag = await (resumed ? BagWriter.resume(dir) : BagWriter.create(dir))
  const p = progress({ items: local.length, bytes: local.reduce((n, i) => n + i.size, 0) })
  try {
    for (const [n, i] of local.entries()) {
      const record: ItemRecord = {
        category: i.category,
        id: i.id,
        sha256: i.sha256,
        size: i.size,
        meta: i.meta,
        modifiedAt: i.modifiedAt,
        seq: n + 1,
        changedBy: 'phone',
        deletedAt: null,
        purgeAt: null,
        daysLeft: null,
      }
      await bag.add(itemPath(record), createReadStream(i.path), (bytes) => p.add(bytes))
      await bag.addJson(itemPath(record) + SIDECAR, record)
      p.item()
    }
  } finally {
    p.done()
  }
  const used = local.reduce((n, i) => n + i.size, 0)
  const file: AccountFile = {
    format: EXPORT_FORMAT,
    exportedAt: now,
    source: 'phone',
    account: {
      id: 'phone',
      tier: 'free',
      premiumUntil: null,
      quotaBytes: 0,
      usedBytes: used,
      createdAt: now,
      lastActivityAt: now,
      lastActivity: 'phone-export',
      frozenAt: null,
      serviceOffAt: null,
      binWindowDays: 0,
    },
    devices: [],
  }
  await bag.addJson('account.json', file)
  const summary = await bag.finish(
    {
      'Source-Organization': 'fakephone',
      'Bag-Software-Agent': 'fakephone',
      'External-Description': "a fakephone phone's own photos, contacts, notes and recordings",
      'Fakephone-Format': EXPORT_FORMAT,
      'Fakephone-Source': 'phone',
      'Fakephone-Exported-At': new Date(now).toISOString(),
      'Fakephone-Items': String(local.length),
    },
    now,
  )
  return { ...summary, account: 'phone', items: local.length, kept: { files: 0, bytes: 0 } }
}
