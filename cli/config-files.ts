/**
 * `config check`'s second half: each file a valid config names, checked as the daemon will use it -- there, readable,
 * of the right kind where that is cheap to tell (an owner key parses, a GPX track has points), a secret not readable by
 * every user -- so a service does not fail at its first start for a file left out, nor a phone refuse every remote
 * command (F2) for an owner key that is not where its config says. Each problem names the setting as a schema problem
 * does (`FILE: key`, the variable) and the path, and says what to do.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import type { AgentConfig } from '../agent/config.js'
import { readGpx } from '../agent/location.js'
import { readDeviceSecret } from '../agent/secret.js'
import type { BrokerConfig } from '../broker/config.js'
import { CONSOLE_TOKEN_FILE, readConsoleToken } from '../broker/console-token.js'
import type { Env } from '../common/config.js'
import { readPublicKey } from '../common/signing.js'
import { similarName } from '../common/similar-name.js'
import { besideConfig } from './config-paths.js'

/** What `config check` found: problems (exit 1) and notes on what it could not check. */
export interface FileFindings {
  problems: string[]
  notes: string[]
}

/** Where a setting's value came from, as common/config's loadConfigWithOrigins says; undefined for a default. */
export type Origin = (key: string) => string | undefined

const codeOf = (err: unknown): unknown => (err as { code?: unknown }).code

/** A setting as a problem names it: where it was set, or that it is the default. */
function setting(origin: Origin, key: string): string {
  return origin(key) ?? `${key} (the default)`
}

/** A secret file others can read: the mode and the fix (`config check` says it a problem, the agent's start a warning). */
export function openToAll(file: string): string | undefined {
  const mode = statSync(file).mode & 0o777
  return mode & 0o004 ? `${file} can be read by every user (mode 0${mode.toString(8)}): chmod 600 ${file}` : undefined
}

/**
 * A data folder the daemon makes at its start (with any missing above it): a problem when it, or the deepest of its
 * folders that exists, is a file, or when its path cannot be looked at (Node's words say why).
 */
function folderProblem(dir: string, found: FileFindings, named: string): void {
  const want = resolve(dir)
  let path = want
  let isDirectory: boolean | undefined
  while (isDirectory === undefined) {
    try {
      isDirectory = statSync(path).isDirectory()
    } catch (err) {
      // Node's words name the path and the code (ENAMETOOLONG; EACCES: check as the daemon's user, or with sudo).
      if (codeOf(err) !== 'ENOENT' && codeOf(err) !== 'ENOTDIR') return void found.problems.push(`${named}: ${(err as Error).message}`)
      // Missing (made at the start) or under a file (found further up); '/' is always there.
      path = dirname(path)
    }
  }
  if (isDirectory) return
  found.problems.push(
    path === want
      ? `${named}: ${dir} is a file, not a folder: give a folder, or move the file away`
      : `${named}: ${dir} cannot be made: ${path} is a file, not a folder`,
  )
}

/** A device secret file as the agent reads it, and (`mode`) not open to every user; `hint` follows a refusal. */
async function secretProblem(file: string, named: string, found: FileFindings, mode: boolean, hint = ''): Promise<void> {
  try {
    await readDeviceSecret({ secretFile: file, secretCredential: '' }, {})
  } catch (err) {
    return void found.problems.push(`${named}: ${(err as Error).message}${hint}`)
  }
  const open = mode ? openToAll(file) : undefined
  if (open) found.problems.push(`${named}: ${open}`)
}

/**
 * F2: an owner key file that is not there, said by `config check` and by the agent's start alike: the file of a similar
 * name beside it, if there is one, and where owner keys come from (or that its folder is missing too).
 */
export function missingOwnerKey(file: string): string {
  const folder = dirname(file)
  let near: string | undefined
  try {
    near = similarName(basename(file), readdirSync(folder))
  } catch {
    return `${file}: no such file, nor folder ${folder}`
  }
  const meant = near === undefined ? '' : `; did you mean ${join(folder, near)}?`
  return (
    `${file}: no such file${meant} (\`fakephone device add ID --account NAME --keys DIR\` writes the owner's ` +
    `public key as DIR/NAME.pub: copy it here)`
  )
}

/** What `config check` notes of an agent config without an owner key: it runs, and refuses every remote command. */
export const NO_OWNER_KEY =
  "no ownerKey: this phone will refuse every remote command (locate, ring, lock, wipe); give it the owner's public key, " +
  'DIR/NAME.pub of `fakephone device add ID --account NAME --keys DIR`, as "ownerKey"'

/** The owner's public key (F2): a missing one as missingOwnerKey says it; none at all is a note (the phone obeys no one). */
function ownerKeyProblem(file: string | undefined, named: string, found: FileFindings, hint: string): void {
  if (file === undefined) return void found.notes.push(NO_OWNER_KEY)
  try {
    readPublicKey(file)
    return
  } catch (err) {
    if (codeOf(err) !== 'ENOENT') return void found.problems.push(`${named}: ${file}: ${(err as Error).message}`)
  }
  found.problems.push(`${named}: ${missingOwnerKey(file)}${hint}`)
}

/**
 * The agent's files: its device secret (the file, the systemd credential when $CREDENTIALS_DIRECTORY is set, or the
 * one that `fakephone-agent@NAME` loads beside `agent-NAME.json`), owner key, data folder and GPX track.
 */
export async function agentFiles(c: AgentConfig, file: string, env: Env, origin: Origin): Promise<FileFindings> {
  const found: FileFindings = { problems: [], notes: [] }
  const credentials = env.CREDENTIALS_DIRECTORY
  const unit = /^agent-(.+)\.json$/.exec(basename(file))?.[1]
  if (c.secretFile !== undefined)
    await secretProblem(c.secretFile, setting(origin, 'secretFile'), found, true, besideConfig(c.secretFile, file))
  else if (credentials) await secretProblem(join(credentials, c.secretCredential), `credential ${c.secretCredential}`, found, false)
  else if (unit !== undefined && c.secretCredential === 'device-secret') {
    const loaded = join(dirname(file), `agent-${unit}.secret`)
    const named = `the device secret fakephone-agent@${unit} loads`
    if (existsSync(loaded)) await secretProblem(loaded, named, found, true)
    else
      found.notes.push(
        `${named}, ${loaded}, is not there yet: \`fakephone device add ${unit} --secret-out FILE\` writes one (install it there, ` +
          `mode 0600)`,
      )
  } else found.notes.push(`the device secret is the systemd credential ${c.secretCredential}, read when the service starts: not checked`)
  ownerKeyProblem(c.ownerKey, setting(origin, 'ownerKey'), found, c.ownerKey === undefined ? '' : besideConfig(c.ownerKey, file))
  folderProblem(c.dataDir, found, setting(origin, 'dataDir'))
  if (c.location.kind === 'gpx') {
    const gpx = c.location.file
    try {
      readGpx(gpx)
    } catch (err) {
      // A relative path is read from the folder the agent starts in: under systemd, its state directory.
      const why =
        codeOf(err) === 'ENOENT'
          ? `${gpx}: no such file (give the GPX track's absolute path)${besideConfig(gpx, file)}`
          : (err as Error).message
      found.problems.push(`${setting(origin, 'location')}: ${why}`)
    }
  }
  return found
}

/** The broker's files: its data folder and, when it has one, its console token (read as the broker's start reads it). */
export function brokerFiles(c: BrokerConfig, origin: Origin): FileFindings {
  const found: FileFindings = { problems: [], notes: [] }
  const named = setting(origin, 'dataDir')
  folderProblem(c.dataDir, found, named)
  const token = join(c.dataDir, CONSOLE_TOKEN_FILE)
  if (found.problems.length > 0 || !existsSync(token)) return found
  try {
    readConsoleToken(token)
    const open = openToAll(token)
    if (open) found.problems.push(`${named}: ${open}`)
  } catch (err) {
    found.problems.push(`${named}: ${(err as Error).message}`)
  }
  return found
}
