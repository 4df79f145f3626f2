/** How `fakephone phone data` shows the phone's data to a person (S1-S4); `--json` bypasses it. */
import type { DataRow } from '../agent/phone-data/control-ops.js'
import type { Category } from '../agent/phone-data/types.js'
import { table } from './render.js'
import { utcSeconds } from '../common/clock.js'

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`
  return `${(n / 1024 / 1024).toFixed(1)} MB`
}

const cell = (v: string | number | null | undefined): string => (v === null || v === undefined ? '-' : String(v))

/** Each category's own columns, from its metadata. */
const DETAILS: Readonly<Record<Category, { header: string[]; cells(meta: DataRow['meta']): string[] }>> = {
  photos: {
    header: ['TAKEN (UTC)', 'POSITION', 'CAMERA'],
    cells: (m) => [
      typeof m.takenAt === 'number' ? utcSeconds(m.takenAt) : '-',
      m.lat === null || m.lon === null ? '-' : `${Number(m.lat).toFixed(5)},${Number(m.lon).toFixed(5)}`,
      cell(m.camera),
    ],
  },
  contacts: { header: ['NAME', 'PHONE', 'EMAIL'], cells: (m) => [cell(m.name), cell(m.phone), cell(m.email)] },
  notes: { header: ['TITLE'], cells: (m) => [cell(m.title)] },
  recordings: { header: ['LENGTH'], cells: (m) => [typeof m.durationS === 'number' ? `${m.durationS.toFixed(1)} s` : '-'] },
}

const HINT: Readonly<Record<Category, string>> = {
  photos: 'take one with: fakephone phone data take-photo',
  contacts: 'add one with: fakephone phone data add contacts --name NAME',
  notes: 'add one with: fakephone phone data add notes --title TITLE',
  recordings: 'make one with: fakephone phone data record',
}

const inCloud = (v: boolean | null): string => (v === null ? '-' : v ? 'yes' : 'no')

export function renderItems(category: Category, rows: DataRow[]): string {
  if (rows.length === 0) return `No ${category} on this phone; ${HINT[category]}\n`
  const details = DETAILS[category]
  return table(
    ['ID', ...details.header, 'SIZE', 'MODIFIED (UTC)', 'IN CLOUD'],
    rows.map((r) => [r.id, ...details.cells(r.meta), formatBytes(r.size), utcSeconds(r.modifiedAt), inCloud(r.inCloud)]),
  )
}

/** One line about an item just added, taken or changed. */
export function renderItem(verb: string, row: DataRow): string {
  const details = DETAILS[row.category]
  const said = details.header.map((h, i) => `${h.toLowerCase().replace(' (utc)', '')} ${details.cells(row.meta)[i] as string}`).join(', ')
  return `${verb} ${row.category}/${row.id} (${formatBytes(row.size)}): ${said}\n`
}
