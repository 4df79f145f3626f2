/**
 * `fakephone phone data ...`: the user's thumbs on the phone's photos,
 * contacts, notes and recordings (S1-S4), over the running agent's control
 * socket: list (with the "in the cloud" marker, S3), add, take-photo,
 * record, edit and delete.
 */
import { type Command, InvalidArgumentError } from 'commander'
import { sendDataControl } from '../agent/control.js'
import type { DataReply, DataRequest, DataRow } from '../agent/phone-data/control-ops.js'
import { checkCategory } from '../agent/phone-data/store.js'
import type { Io } from './io.js'
import { renderItem, renderItems } from './phone-data-render.js'
import { linesForTerminal } from '../common/terminal-text.js'

function seconds(value: string): number {
  const n = Number(value)
  if (!(n >= 0.1 && n <= 3600)) throw new InvalidArgumentError('must be a number of seconds from 0.1 to 3600')
  return n
}

interface TypedFields {
  name?: string
  phone?: string
  email?: string
  title?: string
  body?: string
}

const withFields = (cmd: Command): Command =>
  cmd
    .option('--name <name>', "a contact's full name")
    .option('--phone <number>', "a contact's phone number (empty to clear)")
    .option('--email <address>', "a contact's email address (empty to clear)")
    .option('--title <text>', "a note's title (one line)")
    .option('--body <text>', "a note's text (empty to clear)")

export function addPhoneDataCommands(phone: Command, io: Io): void {
  const data = phone.command('data').description("the phone's photos, contacts, notes and recordings, as its user sees and changes them")
  /** Sends `req` and prints the reply: as JSON with --json, else as `say` puts it. */
  const send = async <R extends DataReply>(req: DataRequest, say: (reply: R) => string): Promise<void> => {
    const o = phone.opts<{ data: string; json?: boolean }>()
    const reply = (await sendDataControl(o.data, req)) as R
    io.out(o.json ? JSON.stringify(reply) + '\n' : linesForTerminal(say(reply)))
  }
  const one =
    (verb: string) =>
    (reply: { item: DataRow }): string =>
      renderItem(verb, reply.item)
  data
    .command('list <category>')
    .description('list photos, contacts, notes or recordings, with whether each is in the cloud')
    .action((category: string) =>
      send({ action: 'list', category }, (reply: { items: DataRow[] }) => renderItems(checkCategory(category), reply.items)),
    )
  withFields(
    data.command('add <category>').description('type in a new contact (--name, --phone, --email) or note (--title, --body)'),
  ).action((category: string, f: TypedFields) => send({ action: 'add', category, ...f }, one('Added')))
  data
    .command('take-photo')
    .description("take a photo: where the phone is now (its location fix) and when (the phone's clock)")
    .action(() => send({ action: 'take-photo' }, one('Took')))
  data
    .command('record')
    .description('record a voice memo')
    .option('--seconds <n>', 'how long', seconds, 5)
    .action((o: { seconds: number }) => send({ action: 'record', seconds: o.seconds }, one('Recorded')))
  withFields(
    data
      .command('edit <category> <id>')
      .description('change a contact or a note; what you leave out stays (photos and recordings cannot be edited)'),
  ).action((category: string, id: string, f: TypedFields) => send({ action: 'edit', category, id, ...f }, one('Changed')))
  data
    .command('delete <category> <id>')
    .description('delete an item from the phone (with its category sync off, the cloud never hears of it: S4)')
    .action((category: string, id: string) => send({ action: 'delete', category, id }, () => `Deleted ${category}/${id} from the phone.\n`))
}
