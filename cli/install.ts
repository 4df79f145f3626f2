/**
 * What `fakephone install` puts in place under a prefix (`/` on a real
 * machine, a temporary directory in tests): the systemd units with
 * ExecStart= pointing at this installation, the broker's system user for
 * systemd-sysusers, and starting configs, which are never overwritten.
 */
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeDirsSync } from '../common/make-dirs.js'
import { UserError } from './io.js'
import { forTerminal } from '../common/terminal-text.js'

/** The command the shipped units run; `fakephone install` replaces it. */
export const SHIPPED_BIN = '/usr/local/bin/fakephone'

/** The folder holding package.json and systemd/ (above cli/ in the sources, above dist/cli/ when built). */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from
  while (!existsSync(join(dir, 'systemd', 'fakephone-broker.service'))) {
    if (dirname(dir) === dir) throw new Error(`no systemd/ folder above ${from}: is this a fakephone installation?`)
    dir = dirname(dir)
  }
  return dir
}

/** The default ExecStart command: this Node binary running this installation's built CLI. */
export function defaultBin(root = packageRoot()): string[] {
  return [process.execPath, join(root, 'dist', 'cli', 'main.js')]
}

/** A command line for ExecStart=: each word quoted when it has to be. */
export function execLine(words: readonly string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `"${w.replace(/(["\\])/g, '\\$1')}"`)).join(' ')
}

/** A shipped unit with its ExecStart= command replaced. */
export function renderUnit(text: string, bin: readonly string[]): string {
  const shipped = `\nExecStart=${SHIPPED_BIN} `
  if (!text.includes(shipped)) throw new Error(`the unit has no "ExecStart=${SHIPPED_BIN} ..." line to adapt`)
  return text.replace(shipped, `\nExecStart=${execLine(bin)} `)
}

export interface InstallOptions {
  prefix: string
  /** The fakephone command for ExecStart=: an absolute program path, then its arguments. */
  bin: readonly string[]
  /** Instance names (device ids) that get an agent config. */
  agents: readonly string[]
  /** The `location` setting of those agent configs. */
  location: string
  root?: string
}

export interface InstalledFile {
  path: string
  /** `kept`: a config that was there already. */
  action: 'wrote' | 'kept'
}

function brokerConfigText(): string {
  return (
    JSON.stringify({ dataDir: '/var/lib/fakephone', host: '127.0.0.1', mqttPort: 1883, httpPort: 8080, logLevel: 'info' }, null, 2) + '\n'
  )
}

function agentConfigText(id: string, location: string): string {
  return (
    JSON.stringify(
      {
        id,
        broker: 'mqtt://127.0.0.1:1883',
        push: 'ws://127.0.0.1:8080/push',
        dataDir: `/var/lib/fakephone-agent-${id}`,
        location,
        interval: '30s',
      },
      null,
      2,
    ) + '\n'
  )
}

/**
 * A folder or file under the prefix that cannot be made, as one line naming it (Node's words) and the prefix: a file
 * in the way (ENOTDIR), a folder that takes no new entry (/proc: ENOENT), a directory where a unit goes (EISDIR). One
 * this user may not write (EACCES, EPERM) goes on as it is: the CLI says to run it as a user who may.
 */
function refusal(prefix: string, err: unknown): unknown {
  const code = (err as { code?: unknown }).code
  if (code === 'EACCES' || code === 'EPERM') return err
  return new UserError(`--prefix ${forTerminal(prefix)}: cannot install there: ${forTerminal((err as Error).message)}`)
}

export async function install(o: InstallOptions): Promise<InstalledFile[]> {
  const root = o.root ?? packageRoot()
  const units = join(o.prefix, 'etc', 'systemd', 'system')
  const etc = join(o.prefix, 'etc', 'fakephone')
  const files: InstalledFile[] = []
  const put = async (path: string, text: string, overwrite: boolean): Promise<void> => {
    try {
      makeDirsSync(dirname(path))
      if (!overwrite && existsSync(path)) return void files.push({ path, action: 'kept' })
      await writeFile(path, text, { mode: 0o644 })
    } catch (err) {
      throw refusal(o.prefix, err)
    }
    files.push({ path, action: 'wrote' })
  }
  for (const unit of ['fakephone-broker.service', 'fakephone-agent@.service']) {
    await put(join(units, unit), renderUnit(await readFile(join(root, 'systemd', unit), 'utf8'), o.bin), true)
  }
  await put(
    join(o.prefix, 'etc', 'sysusers.d', 'fakephone.conf'),
    await readFile(join(root, 'systemd', 'fakephone.sysusers'), 'utf8'),
    true,
  )
  await put(join(etc, 'broker.json'), brokerConfigText(), false)
  for (const id of o.agents) await put(join(etc, `agent-${id}.json`), agentConfigText(id, o.location), false)
  return files
}
