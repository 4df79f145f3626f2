/**
 * Validates a BagIt bag (RFC 8493; M3) and reports every problem exactly,
 * as a path and what is wrong with it:
 *   - `bagit.txt` declares `BagIt-Version: 1.0` and `Tag-File-Character-Encoding: UTF-8` (section 2.1.1);
 *   - at least one payload manifest, each of a known algorithm (md5, sha1, sha256, sha512);
 *     each line `checksum path`, the path under `data/`, decoded per section 2.1.3 (paths.ts);
 *   - every manifest entry is present and its checksum matches (section 3, "valid");
 *   - every file under `data/` is in every payload manifest (no extra payload files);
 *   - `Payload-Oxum` in bag-info.txt, when there, matches the payload's bytes and file count;
 *   - every tag manifest entry is present and matches;
 *   - `fetch.txt` is refused: this validator fetches nothing, so such a bag is not complete here.
 */
import { lstat, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { hashFile } from '../hash-file.js'
import { isAre, plural } from '../plural.js'
import { decodeManifestPath, unsafePath } from './paths.js'

/**
 * A value from the bag (a line, a path) in a problem, quoted as it is: a problem is exact text (`--json` gives it
 * exactly), and what shows it on a terminal escapes it once (cli/transfer/transfer-commands.ts renderProblems), as every
 * name from others. JSON's quoting would escape some characters its way first, and the terminal the rest its own.
 */
const quoted = (value: string): string => `"${value}"`

export interface BagProblem {
  /** The file the problem is about, relative to the bag (`bag-info.txt`, `data/photos/IMG_1.jpg`). */
  path: string
  problem: string
}

export interface BagReport {
  valid: boolean
  problems: BagProblem[]
  /** Files and bytes under `data/`. */
  payload: { files: number; bytes: number }
  /** bag-info.txt's fields, in order (a label may repeat). */
  info: [label: string, value: string][]
  /** Payload files listed in the manifests, decoded, with their SHA-256 when a sha256 manifest lists them. */
  manifest: Map<string, string | undefined>
}

export interface ValidateOptions {
  /** Hears each chunk hashed: its length, and the payload's total bytes. */
  onBytes?: (n: number, total: number) => void
}

const ALGORITHMS: Readonly<Record<string, { name: string; hexLength: number }>> = {
  md5: { name: 'md5', hexLength: 32 },
  sha1: { name: 'sha1', hexLength: 40 },
  sha256: { name: 'sha256', hexLength: 64 },
  sha512: { name: 'sha512', hexLength: 128 },
}

interface Manifest {
  file: string
  algorithm: string
  /** Decoded path to expected checksum (lower case). */
  entries: Map<string, string>
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  )
}

/** Every regular file under `dir` (relative paths with `/`); other kinds are reported, and kept in `links`. */
async function walk(base: string, rel: string, files: Map<string, number>, links: Map<string, BagProblem>): Promise<void> {
  for (const entry of await readdir(join(base, rel), { withFileTypes: true })) {
    const path = `${rel}/${entry.name}`
    if (entry.isDirectory()) await walk(base, path, files, links)
    else if (entry.isFile()) files.set(path, (await lstat(join(base, path))).size)
    else links.set(path, { path, problem: NOT_A_FILE })
  }
}

const NOT_A_FILE = 'not a regular file (a link or a device): a bag holds files only'

/**
 * The link (or device) in data/ that `path` is, or lies under: the manifests' files there are not read, and are said
 * once with the link's problem rather than each as missing (one link to a folder made a line per file of it).
 */
function linkOf(path: string, links: Map<string, BagProblem>): BagProblem | undefined {
  for (const [at, problem] of links) if (path === at || path.startsWith(`${at}/`)) return problem
  return undefined
}

/**
 * What the bag's `name` (a path under `dir`, checked by unsafePath) is: a regular file, or nothing; anything else is
 * reported as `name` and is `other`. Each folder on the way is looked at too: a folder of the bag that is a link would
 * have `name` read from wherever the link points (`sub -> /etc` and `sub/shadow`), outside the bag.
 */
async function bagFile(dir: string, name: string, problems: BagProblem[]): Promise<'file' | 'missing' | 'other'> {
  const segments = name.split('/')
  for (let i = 1; i < segments.length; i++) {
    const folder = segments.slice(0, i).join('/')
    const found = await lstat(join(dir, folder)).catch(() => undefined)
    if (found === undefined) return 'missing'
    if (!found.isDirectory()) {
      problems.push({ path: name, problem: `under ${quoted(folder)}, which is not a folder (a link or a file): not read` })
      return 'other'
    }
  }
  const found = await lstat(join(dir, name)).catch(() => undefined)
  if (found === undefined) return 'missing'
  if (found.isFile()) return 'file'
  problems.push({ path: name, problem: NOT_A_FILE })
  return 'other'
}

/**
 * bag-info.txt's `Label: value` lines, continuation lines folded in (section 2.2.2): a line ends with LF, CR or CRLF;
 * a line starting with a space or tab continues the value above, joined to it by LF, its leading whitespace dropped.
 */
export function parseBagInfo(text: string, problems: BagProblem[]): [string, string][] {
  const fields: [string, string][] = []
  text.split(/\r\n|\r|\n/).forEach((line, i) => {
    if (line === '') return
    const last = fields[fields.length - 1]
    if (/^[ \t]/.test(line) && last) {
      last[1] += `\n${line.replace(/^[ \t]+/, '')}`
      return
    }
    const m = /^([^:\s][^:]*):[ \t]*(.*)$/.exec(line)
    if (m) fields.push([(m[1] as string).trim(), m[2] as string])
    else problems.push({ path: 'bag-info.txt', problem: `line ${i + 1} is not "Label: value": ${quoted(line)}` })
  })
  return fields
}

function parseManifest(file: string, algorithm: string, text: string, tag: boolean, problems: BagProblem[]): Manifest {
  const entries = new Map<string, string>()
  const { hexLength } = ALGORITHMS[algorithm] as { hexLength: number }
  text.split(/\r\n|\r|\n/).forEach((line, i) => {
    if (line === '') return
    const m = /^([0-9A-Fa-f]+)[ \t]+(.+)$/.exec(line)
    if (!m || (m[1] as string).length !== hexLength) {
      problems.push({ path: file, problem: `line ${i + 1} is not "<${algorithm} checksum> <path>": ${quoted(line)}` })
      return
    }
    const path = decodeManifestPath((m[2] as string).replace(/^\*/, ''))
    const why = unsafePath(path)
    if (why !== null) problems.push({ path: file, problem: `line ${i + 1} names ${why}: ${quoted(path)}` })
    else if (!tag && !path.startsWith('data/'))
      problems.push({
        path: file,
        problem: `line ${i + 1} names ${quoted(path)}, outside data/ (a payload manifest lists payload only)`,
      })
    else if (tag && path.startsWith('data/'))
      problems.push({
        path: file,
        problem: `line ${i + 1} names the payload file ${quoted(path)} (a tag manifest lists tag files)`,
      })
    else if (entries.has(path)) problems.push({ path: file, problem: `line ${i + 1} lists ${quoted(path)} a second time` })
    else entries.set(path, (m[1] as string).toLowerCase())
  })
  return { file, algorithm, entries }
}

function checkBagitTxt(text: string, problems: BagProblem[]): void {
  const bad = (problem: string): void => void problems.push({ path: 'bagit.txt', problem })
  if (text.startsWith('\uFEFF')) return bad('starts with a byte-order mark, which RFC 8493 forbids')
  const lines = text.split(/\r\n|\r|\n/).filter((l, i, all) => !(l === '' && i === all.length - 1))
  const version = /^BagIt-Version: (\d+)\.(\d+)$/.exec(lines[0] ?? '')
  if (!version) bad(`first line must be "BagIt-Version: 1.0", not ${quoted(lines[0] ?? '')}`)
  else if (`${version[1]}.${version[2]}` !== '1.0') bad(`declares BagIt ${version[1]}.${version[2]}; this reads BagIt 1.0`)
  if (lines[1] !== 'Tag-File-Character-Encoding: UTF-8')
    bad(`second line must be "Tag-File-Character-Encoding: UTF-8", not ${quoted(lines[1] ?? '')}`)
  if (lines.length > 2) bad(`has ${lines.length} lines; it holds exactly two`)
}

/** The payload manifests and tag manifests in `dir`, by name; one of an algorithm this does not read is a problem. */
async function readManifests(
  dir: string,
  read: (name: string) => Promise<string | undefined>,
  problems: BagProblem[],
): Promise<{ manifests: Manifest[]; tagManifests: Manifest[] }> {
  const manifests: Manifest[] = []
  const tagManifests: Manifest[] = []
  for (const name of (await readdir(dir)).sort()) {
    const m = /^(tag)?manifest-([a-z0-9]+)\.txt$/.exec(name)
    if (!m) continue
    const algorithm = m[2] as string
    if (!(algorithm in ALGORITHMS)) {
      problems.push({ path: name, problem: `unknown algorithm "${algorithm}": this reads ${Object.keys(ALGORITHMS).join(', ')}` })
      continue
    }
    const parsed = parseManifest(name, algorithm, (await read(name)) ?? '', m[1] === 'tag', problems)
    ;(m[1] === 'tag' ? tagManifests : manifests).push(parsed)
  }
  return { manifests, tagManifests }
}

/** bag-info.txt's Payload-Oxum, when it has one, against what data/ holds. */
function checkPayloadOxum(info: [string, string][], payload: { files: number; bytes: number }, problems: BagProblem[]): void {
  const oxum = info.find(([label]) => label === 'Payload-Oxum')?.[1]
  if (oxum === undefined) return
  const m = /^(\d+)\.(\d+)$/.exec(oxum.trim())
  if (!m) problems.push({ path: 'bag-info.txt', problem: `Payload-Oxum ${quoted(oxum)} is not "<bytes>.<files>"` })
  else if (Number(m[1]) !== payload.bytes || Number(m[2]) !== payload.files)
    problems.push({
      path: 'bag-info.txt',
      problem: `Payload-Oxum says ${m[1]} bytes in ${m[2]} files, but data/ holds ${payload.bytes} bytes in ${payload.files} files`,
    })
}

/**
 * Every payload file in every manifest; every entry present (or under a link, said once with it). Each entry's SHA-256
 * goes into `payloadEntries` (undefined for a path no SHA-256 manifest lists).
 */
function checkListed(
  manifests: Manifest[],
  files: Map<string, number>,
  links: Map<string, BagProblem>,
  payloadEntries: Map<string, string | undefined>,
  problems: BagProblem[],
): void {
  const unread = new Map<BagProblem, Set<string>>()
  for (const m of manifests) {
    for (const path of files.keys())
      if (!m.entries.has(path)) problems.push({ path, problem: `not listed in ${m.file} (a payload file the bag does not account for)` })
    for (const [path, sum] of m.entries) {
      const link = files.has(path) ? undefined : linkOf(path, links)
      if (link) unread.set(link, (unread.get(link) ?? new Set()).add(path))
      else if (!files.has(path)) problems.push({ path, problem: `missing: listed in ${m.file} but not in the bag` })
      payloadEntries.set(path, m.algorithm === 'sha256' ? sum : payloadEntries.get(path))
    }
  }
  for (const [link, { size }] of unread) link.problem += `; the ${plural(size, 'file')} the manifests list there ${isAre(size)} not read`
}

/** Checks the bag in `dir`; never throws for what is wrong with the bag, only reports it. */
export async function validateBag(dir: string, opts: ValidateOptions = {}): Promise<BagReport> {
  const problems: BagProblem[] = []
  // A tag file that is a link (or a device) is reported and not read: a bag's files are its own, never another's.
  const read = async (name: string): Promise<string | undefined> => {
    if ((await bagFile(dir, name, problems)) !== 'file') return undefined
    return readFile(join(dir, name), 'utf8').catch(() => undefined)
  }
  const report = (): BagReport => ({
    valid: problems.length === 0,
    problems: problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    payload,
    info,
    manifest: payloadEntries,
  })
  const payload = { files: 0, bytes: 0 }
  let info: [string, string][] = []
  const payloadEntries = new Map<string, string | undefined>()

  const bagit = await read('bagit.txt')
  if (bagit === undefined) {
    problems.push({ path: 'bagit.txt', problem: 'missing: this is not a bag (or not its base directory)' })
    return report()
  }
  checkBagitTxt(bagit, problems)
  if (await exists(join(dir, 'fetch.txt')))
    problems.push({
      path: 'fetch.txt',
      problem: 'this bag lists files to fetch from elsewhere; fakephone fetches nothing, so it is not complete',
    })

  const files = new Map<string, number>()
  const links = new Map<string, BagProblem>()
  const data = await lstat(join(dir, 'data')).catch(() => undefined)
  if (data?.isDirectory()) await walk(dir, 'data', files, links)
  else if (data) links.set('data', { path: 'data/', problem: NOT_A_FILE })
  else problems.push({ path: 'data/', problem: 'missing: a bag keeps its payload in data/' })
  problems.push(...links.values())
  for (const size of files.values()) payload.bytes += size
  payload.files = files.size

  const { manifests, tagManifests } = await readManifests(dir, read, problems)
  if (manifests.length === 0) problems.push({ path: 'manifest-sha256.txt', problem: 'missing: a bag has at least one payload manifest' })

  const bagInfo = await read('bag-info.txt')
  if (bagInfo !== undefined) info = parseBagInfo(bagInfo, problems)
  checkPayloadOxum(info, payload, problems)

  checkListed(manifests, files, links, payloadEntries, problems)

  // Hash each file once, for every manifest that lists it.
  const total = payload.bytes
  const onBytes = (n: number): void => opts.onBytes?.(n, total)
  const checkAll = async (list: Manifest[], sizes: (path: string) => boolean): Promise<void> => {
    const wanted = new Map<string, string[]>()
    for (const m of list) for (const path of m.entries.keys()) if (sizes(path)) wanted.set(path, [...(wanted.get(path) ?? []), m.algorithm])
    for (const [path, algorithms] of wanted) {
      const actual = await hashFile(join(dir, path), [...new Set(algorithms)], path.startsWith('data/') ? onBytes : () => undefined)
      for (const m of list) {
        const expected = m.entries.get(path)
        const got = actual.get(m.algorithm)
        if (expected !== undefined && got !== expected)
          problems.push({ path, problem: `checksum mismatch: ${m.file} says ${expected}, the file hashes to ${got}` })
      }
    }
  }
  await checkAll(manifests, (path) => files.has(path))
  const tagPresent = new Set<string>()
  for (const m of tagManifests)
    for (const path of m.entries.keys()) {
      const kind = await bagFile(dir, path, problems)
      if (kind === 'file') tagPresent.add(path)
      else if (kind === 'missing') problems.push({ path, problem: `missing: listed in ${m.file} but not in the bag` })
    }
  await checkAll(tagManifests, (path) => tagPresent.has(path))
  return report()
}
