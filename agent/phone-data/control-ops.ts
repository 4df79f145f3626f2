/**
 * The user's thumbs on the phone's data (S1-S4), as requests on the agent's
 * control socket: list a category (with the "in the cloud" marker, S3), add
 * a contact or a note, take a photo where the phone is, record, edit and
 * delete. `fakephone phone data ...` sends them.
 */
import { z } from 'zod'
import type { Agent } from '../agent.js'
import { checkCategory, notFound, PhoneDataError } from './store.js'
import type { Category, ItemInput, LocalItem } from './types.js'

const text = z.string().max(10_000)

export const DataRequestSchema = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('list'), category: z.string() }),
  z.strictObject({
    action: z.literal('add'),
    category: z.string(),
    name: text.optional(),
    phone: text.optional(),
    email: text.optional(),
    title: text.optional(),
    body: text.optional(),
  }),
  z.strictObject({ action: z.literal('take-photo') }),
  z.strictObject({ action: z.literal('record'), seconds: z.number().optional() }),
  z.strictObject({
    action: z.literal('edit'),
    category: z.string(),
    id: z.string(),
    name: text.optional(),
    phone: text.optional(),
    email: text.optional(),
    title: text.optional(),
    body: text.optional(),
  }),
  z.strictObject({ action: z.literal('delete'), category: z.string(), id: z.string() }),
])
export type DataRequest = z.infer<typeof DataRequestSchema>

/** An item as the user sees it: the file, its metadata and whether it carries the "in the cloud" marker (null: unknown). */
export type DataRow = LocalItem & { inCloud: boolean | null }

export type DataReply = { items: DataRow[] } | { item: DataRow } | { deleted: { category: Category; id: string } }

interface Fields {
  name?: string
  phone?: string
  email?: string
  title?: string
  body?: string
}

/** The fields each typed-in kind takes; one meant for the other kind is refused, never dropped without a word. */
const FIELDS_OF: Readonly<Record<'contacts' | 'notes', readonly (keyof Fields)[]>> = {
  contacts: ['name', 'phone', 'email'],
  notes: ['title', 'body'],
}

/** "--a", "--a and --b", "--a, --b and --c" (`and`), or with `or`. */
const flagList = (keys: readonly string[], word: 'and' | 'or'): string => {
  const flags = keys.map((k) => `--${k}`)
  return flags.length === 1 ? (flags[0] as string) : `${flags.slice(0, -1).join(', ')} ${word} ${flags[flags.length - 1] as string}`
}

/** What the user typed for a contact or a note; `was` fills a name or title left out of an edit. */
function inputFor(category: Category, f: Fields, was?: LocalItem): ItemInput {
  const kind = category === 'contacts' ? 'contact' : 'note'
  const need = (value: string | undefined, kept: unknown, what: string): string => {
    if (value !== undefined) return value
    if (typeof kept === 'string') return kept
    throw new PhoneDataError('BAD_INPUT', `a new ${kind} needs ${what}`)
  }
  if (category === 'contacts' || category === 'notes') {
    const takes = FIELDS_OF[category]
    const stray = [...FIELDS_OF.contacts, ...FIELDS_OF.notes].filter((key) => f[key] !== undefined && !takes.includes(key))
    if (stray.length > 0) throw new PhoneDataError('BAD_INPUT', `a ${kind} takes ${flagList(takes, 'and')}, not ${flagList(stray, 'or')}`)
  }
  switch (category) {
    case 'contacts':
      return { category, name: need(f.name, was?.meta.name, 'a name (--name)'), phone: f.phone, email: f.email }
    case 'notes':
      return { category, title: need(f.title, was?.meta.title, 'a title (--title)'), body: f.body }
    default:
      return { category }
  }
}

export async function handleData(agent: Agent, req: DataRequest): Promise<DataReply> {
  const row = (item: LocalItem): DataRow => ({ ...item, inCloud: agent.inCloud(item.category, item.id) })
  switch (req.action) {
    case 'list':
      return { items: (await agent.data.list(checkCategory(req.category))).map(row) }
    case 'add': {
      const category = checkCategory(req.category)
      if (category === 'photos' || category === 'recordings')
        throw new PhoneDataError('BAD_INPUT', `${category} are not typed in: use take-photo or record`)
      return { item: row(await agent.data.add(inputFor(category, req))) }
    }
    case 'take-photo':
      return { item: row(await agent.takePhoto()) }
    case 'record':
      return { item: row(await agent.data.add({ category: 'recordings', durationS: req.seconds })) }
    case 'edit': {
      const category = checkCategory(req.category)
      const was = await agent.data.get(category, req.id)
      if (!was) throw notFound(category, req.id)
      return { item: row(await agent.data.edit(category, req.id, inputFor(category, req, was))) }
    }
    case 'delete': {
      const category = checkCategory(req.category)
      if (!(await agent.data.delete(category, req.id))) throw notFound(category, req.id)
      return { deleted: { category, id: req.id } }
    }
  }
}
