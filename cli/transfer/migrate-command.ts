/**
 * M2 on the command line: `fakephone console migrate ACCOUNT --to URL --to-token-file FILE --job FILE`, the account
 * copied to another cloud and verified (migrate.ts). A module of its own, apart from export and import
 * (transfer-commands.ts), so that `console migrate` loads the migration's code and not the bags' (console-command.ts
 * loads a subcommand's module when it is named).
 */
import type { Command } from 'commander'
import { SmallFileError, readSmallFileSync } from '../../common/small-file.js'
import { AccountNameSchema } from '../../common/contract.js'
import { ConsoleClient } from '../console-client.js'
import { UserError, type Io } from '../io.js'
import { httpUrl } from '../options.js'
import { migrate, type MigrationJob } from './migrate.js'
import { progressOn } from './progress.js'
import { countByKind } from '../../common/cloud/transfer-api.js'
import { forTerminal, lineForTerminal, linesForTerminal, quoted } from '../../common/terminal-text.js'

export function renderJob(job: MigrationJob): string {
  return (
    `Migration of ${forTerminal(job.account)} to ${forTerminal(job.to)} (account ${forTerminal(job.toAccount)}): ${job.state}. ` +
    `${lineForTerminal(job.summary)}\n` +
    // The N of "N of N items" by kind, in the words `console export` counts them with ("71 items, 1 drive file, 3 backups").
    (job.report.length === 0 ? '' : `  of the ${job.report.length}: ${countByKind(job.report.map((r) => r.kind))}\n`) +
    [...job.report.filter((r) => !r.identical), ...job.others]
      .map((r) => `  ${r.kind} ${forTerminal(r.id)}: ${lineForTerminal(String(r.error))}\n`)
      .join('') +
    // M2: every fault in transit is shown, also when a retry then delivered the bytes intact.
    job.report
      .filter((r) => r.identical && r.transit.length > 0)
      .map((r) => `  ${r.kind} ${forTerminal(r.id)}: identical after a retry; ${r.transit.map(lineForTerminal).join('; ')}\n`)
      .join('') +
    // M2: the destination could not reach the source, so the bytes came through this console: said once.
    (job.relayedBecause === undefined
      ? ''
      : `The destination could not reach the source (${lineForTerminal(job.relayedBecause)}): this console relayed the bytes instead.\n`) +
    (job.phones
      ? `Phones told over push to follow to ${forTerminal(job.phones.to.cloud)}: ${job.phones.devices.map(forTerminal).join(', ')}\n`
      : '')
  )
}

/** `console migrate`: M2, the account copied to another cloud and verified, as a resumable job. */
export function addMigrateCommand(cmd: Command, io: Io, client: () => Promise<ConsoleClient>, opts: () => { json?: boolean }): void {
  cmd
    .command('migrate <account>')
    .description('M2: copy the account to another fakephone cloud and verify every item there (a job: run again to resume)')
    .requiredOption('--to <url>', "the other cloud's console API, e.g. http://127.0.0.1:9080", httpUrl)
    .requiredOption('--to-token-file <file>', "the other cloud's console token")
    .option('--to-account <name>', 'the account there (default: the same name; docs/CONTRACT.md says which names)')
    .requiredOption('--job <file>', 'where the job is kept; run the same command again to resume it')
    .option(
      '--from-url <url>',
      "this cloud's console API as the other cloud reaches it, to pull the bytes from (default: --api's address)",
      httpUrl,
    )
    .option('--relay', 'carry the bytes through this console instead of letting the other cloud pull them')
    .action(
      async (
        account: string,
        o: { to: string; toTokenFile: string; toAccount?: string; job: string; fromUrl?: string; relay?: boolean },
      ) => {
        const { json = false } = opts()
        const toAccount = o.toAccount ?? account
        // The account is made there: its name must meet the rule (an account named before it moves under a new name).
        const bad = AccountNameSchema.safeParse(toAccount).error
        if (bad)
          throw new UserError(
            `the account there would be ${quoted(toAccount)}: ${bad.issues[0]?.message}` +
              (o.toAccount === undefined ? '; give --to-account with a name that meets it' : ''),
          )
        let token: string
        try {
          token = readSmallFileSync(o.toTokenFile)
        } catch (err) {
          const why = err instanceof SmallFileError ? `: ${err.message}` : ` ${o.toTokenFile} (${(err as NodeJS.ErrnoException).code})`
          throw new UserError(`cannot read the other cloud's console token${why}`)
        }
        const source = await client()
        const job = await migrate({
          source,
          dest: new ConsoleClient(o.to, token.trim(), undefined, { from: '--to' }),
          account,
          to: o.to,
          toAccount,
          jobFile: o.job,
          signal: io.signal,
          now: () => io.clock.now(),
          progress: progressOn(io, json, `migrating ${account}`),
          verifyProgress: progressOn(io, json, `verifying ${account} at ${o.to}`),
          pullFrom: o.relay === true ? undefined : (o.fromUrl ?? source.baseUrl),
        })
        io.out(json ? JSON.stringify(job) + '\n' : linesForTerminal(renderJob(job)))
        if (job.state === 'completed') return
        // Ctrl-C: the job stopped between blobs and was saved so (main.ts lets this command stop by itself).
        if (job.state === 'cancelled')
          throw new UserError(
            `the migration was stopped and saved as cancelled in ${o.job}: run the same command again to resume it`,
            130,
            'INTERRUPTED',
          )
        // The lines above already say what did not go across; under --json the error line is the only text, so it says it.
        const said = [job.summary, ...job.others.map((r) => `${r.kind} ${r.id}: ${r.error}`)].join('; ')
        throw new UserError(
          `the migration is ${job.state}: ${json ? said : 'what did not go across is said above'}; resolve it and run ` +
            'the same command again to carry on',
        )
      },
    )
}
