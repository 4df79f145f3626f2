/**
 * M3 on the command line:
 *   fakephone console export ACCOUNT --out PATH [--format dir|tar]   an account's whole cloud as a BagIt bag
 *   fakephone console import BAG --account NAME                     a bag into an account of this cloud (validated first)
 *   fakephone bag validate BAG                                      any BagIt 1.0 bag, directory or .tar
 * Progress goes to stderr on a terminal; --json prints one JSON object and no progress. An export is put at --out only
 * whole; one cut short is carried on by the same command (open-bag.ts, bagTo), which says so on stderr. The export's and
 * the import's code loads when one runs: `bag validate`, and every `phone` command (which adds `phone export`), skip it.
 */
import { Command, InvalidArgumentError } from 'commander'
import { COMMAND_SUMMARIES } from '../command-summaries.js'
import { validateBag, type BagProblem } from '../../common/bagit/validate.js'
import { countByKind, type ImportReply } from '../../common/cloud/transfer-api.js'
import type { ConsoleClient } from '../console-client.js'
import { UserError, type Io } from '../io.js'
import { accountName } from '../options.js'
import { plural } from '../render.js'
import type { ExportResult } from './account-export.js'
import { ExportRunningError, bagTo, openBag, unfinished } from './open-bag.js'
import { progressOn, type Progress } from './progress.js'
import { forTerminal, lineForTerminal, quoted } from '../../common/terminal-text.js'

export type BagFormat = 'dir' | 'tar'

export function bagFormat(value: string): BagFormat {
  if (value !== 'dir' && value !== 'tar') throw new InvalidArgumentError('must be "dir" (a bag directory) or "tar" (one file)')
  return value
}

/** A bag's problems for a terminal: its file names and lines are whoever made the bag's, each shown escaped, once. */
export function renderProblems(bag: string, problems: readonly BagProblem[]): string {
  return (
    `${forTerminal(bag)} is not a valid bag: ${plural(problems.length, 'problem')}\n` +
    problems.map((p) => `  ${quoted(p.path)}: ${forTerminal(p.problem)}\n`).join('')
  )
}

/** What to do about a bag that does not validate: its checks are its maker's, so only a new copy mends it. */
export const BAG_FIX =
  'A bag is checked against the checksums and counts its maker wrote in it: make it again (fakephone console export, ' +
  'fakephone phone export) or copy it again whole from the original (files, not links), then try again.'

/**
 * An import's result for a terminal: the records by kind, in the words `console export` counts them with (its "71
 * items, 1 drive file, 3 backups" are found again here); a refused record's id comes from the bag, its reason may
 * quote it; each escaped.
 */
export function renderImport(reply: ImportReply): string {
  const failed = reply.outcomes.filter((o) => o.result === 'failed')
  return (
    `Imported into account ${forTerminal(reply.account)}: ${plural(reply.imported, 'record')} added, ` +
    `${reply.present} already there, ${reply.failed} refused\n` +
    `  of the bag's ${plural(reply.outcomes.length, 'record')}: ${countByKind(reply.outcomes.map((o) => o.kind))}\n` +
    failed.map((o) => `  ${o.kind} ${forTerminal(o.id)}: ${lineForTerminal(String(o.error))}\n`).join('')
  )
}

/** Validates a bag (directory or tar) and runs `use` on it while it is open; refuses an invalid bag with its problems. */
async function withValidBag<T>(
  io: Io,
  json: boolean,
  path: string,
  use: (dir: string, report: Awaited<ReturnType<typeof validateBag>>) => Promise<T>,
): Promise<T> {
  const bag = await openBag(path)
  try {
    let progress: Progress | undefined
    const report = await validateBag(bag.dir, {
      onBytes: (n, bytes) => (progress ??= progressOn(io, json, 'validating')({ items: 0, bytes })).add(n),
    }).finally(() => progress?.done())
    return await use(bag.dir, report)
  } finally {
    await bag.close()
  }
}

/**
 * Writes a bag (directory or tar) with `write` and says what went in; says on stderr when it carries on an interrupted
 * run's bag, and, when it stops short, where the part written waits for the next run.
 */
async function writeBag(
  io: Io,
  json: boolean,
  o: { out: string; format: BagFormat },
  write: (dir: string, resumed: boolean) => Promise<ExportResult>,
): Promise<void> {
  const onResume = (partial: string): void =>
    io.err(`resuming the interrupted export in ${partial}: files already written are checked and kept when their checksums match\n`)
  // Said once, whichever stops the export: a failure, or a Ctrl-C (which ends the process without waiting for the export).
  let told = false
  const tellWhatIsKept = (): void => {
    const partial = told ? undefined : unfinished(o.out)
    told = true
    if (partial !== undefined) io.err(`the part written is kept in ${partial}: run the same command again to carry on from it\n`)
  }
  io.signal.addEventListener('abort', tellWhatIsKept, { once: true })
  const result = await bagTo(o.out, o.format === 'tar', io.clock.now(), write, { onResume })
    .catch((err: unknown) => {
      if (!(err instanceof ExportRunningError)) tellWhatIsKept()
      throw err
    })
    .finally(() => io.signal.removeEventListener('abort', tellWhatIsKept))
  const view = {
    bag: o.out,
    format: o.format,
    account: result.account,
    files: result.files,
    bytes: result.bytes,
    oxum: result.oxum,
    kept: result.kept,
  }
  const kept =
    result.kept.files > 0 ? ` ${plural(result.kept.files, 'file')} (${result.kept.bytes} bytes) kept from the interrupted run.` : ''
  // As bag-info.txt counts them: synced items, then (a cloud export) drive files and backups.
  const cloudOnly =
    result.driveFiles === undefined ? '' : `${plural(result.driveFiles, 'drive file')}, ${plural(result.backups as number, 'backup')}, `
  io.out(
    json
      ? JSON.stringify(view) + '\n'
      : `Exported ${view.account === 'phone' ? 'the phone' : `account ${forTerminal(view.account)}`} to ${o.out}: ` +
          `${plural(result.items, 'item')}, ${cloudOnly}${plural(view.files, 'file')}, ${view.bytes} bytes ` +
          `(Payload-Oxum ${view.oxum}).${kept}\n`,
  )
}

/** `fakephone phone export`: the phone's own data, as the phone's user, in the same bag layout. */
export function addPhoneExportCommand(phone: Command, io: Io): void {
  phone
    .command('export')
    .description("M3: the phone's photos, contacts, notes and recordings as a BagIt bag (read from its data directory)")
    .requiredOption('--out <path>', 'where the bag goes: a new directory, or a file with --format tar')
    .option('--format <dir|tar>', 'a bag directory, or one tar file of it', bagFormat, 'dir' as BagFormat)
    .action(async (o: { out: string; format: BagFormat }) => {
      const { data, json = false } = phone.opts<{ data: string; json?: boolean }>()
      const { exportPhone } = await import('./phone-export.js')
      await writeBag(io, json, o, (dir, resumed) => exportPhone(data, dir, io.clock, progressOn(io, json, 'exporting the phone'), resumed))
    })
}

export function addTransferConsoleCommands(
  cmd: Command,
  io: Io,
  client: () => Promise<ConsoleClient>,
  opts: () => { json?: boolean; api: string },
): void {
  cmd
    .command('export <account>')
    .description("M3: the account's whole cloud as a BagIt bag: items with sidecars, drive, backups, history, commands, notifications")
    .requiredOption('--out <path>', 'where the bag goes: a new directory, or a file with --format tar')
    .option('--format <dir|tar>', 'a bag directory, or one tar file of it', bagFormat, 'dir' as BagFormat)
    .action(async (account: string, o: { out: string; format: BagFormat }) => {
      const { json = false, api: url } = opts()
      const api = await client()
      const { exportAccount } = await import('./account-export.js')
      await writeBag(io, json, o, (dir, resumed) =>
        exportAccount(api, account, dir, url, progressOn(io, json, `exporting ${account}`), resumed),
      )
    })
  cmd
    .command('import <bag>')
    .description('M3: a bag from `console export` into an account of this cloud: validated first, nothing imported twice')
    .requiredOption(
      '--account <name>',
      'the account to import into (made when it does not exist; docs/CONTRACT.md says which names)',
      accountName,
    )
    .action(async (path: string, o: { account: string }) => {
      const { json = false } = opts()
      const api = await client()
      const { fromBag, importAccount, readAccountBag } = await import('./account-import.js')
      const reply = await withValidBag(io, json, path, async (dir, report) => {
        const contents = report.valid ? await readAccountBag(dir, report) : report.problems
        if (Array.isArray(contents)) throw new UserError(`${renderProblems(path, contents)}Nothing was imported. ${BAG_FIX}`)
        return importAccount(api, o.account, contents, fromBag(dir), progressOn(io, json, `importing into ${o.account}`))
      })
      io.out(json ? JSON.stringify(reply) + '\n' : renderImport(reply))
      if (reply.failed > 0) throw new UserError(`${reply.failed} records were refused (listed above); the rest are in`)
    })
}

export function bagCommand(io: Io): Command {
  const cmd = new Command('bag').description(COMMAND_SUMMARIES.bag.description).option('--json', 'machine-readable output')
  cmd
    .command('validate <bag>')
    .description('check a bag (a directory or a .tar): every manifest entry, no extra files, Payload-Oxum, the tag manifest')
    .action(async (path: string) => {
      const json = cmd.opts<{ json?: boolean }>().json === true
      const report = await withValidBag(io, json, path, (_, r) => Promise.resolve(r))
      const view = { bag: path, valid: report.valid, payload: report.payload, problems: report.problems }
      if (json) io.out(JSON.stringify(view) + '\n')
      else if (report.valid)
        io.out(
          `${forTerminal(path)} is a valid BagIt 1.0 bag: ` +
            `${plural(report.payload.files, 'payload file')}, ${plural(report.payload.bytes, 'byte')}.\n`,
        )
      if (!report.valid) throw new UserError(json ? 'the bag is not valid' : `${renderProblems(path, report.problems)}${BAG_FIX}`)
    })
  return cmd
}
