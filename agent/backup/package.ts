/**
 * B1: a backup package -- one JSON file (format `fakephone-backup/1`,
 * docs/CONTRACT.md) holding the five parts: settings (system preferences
 * and the phone's PIN), the app list, the home-screen layout, the saved
 * Wi-Fi networks and the apps' data, each file byte for byte (base64) --
 * its manifest, and putting a package back onto a phone.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import {
  PACKAGE_FORMAT,
  PART_NAMES,
  type BackupPackage,
  type Manifest,
  type PackageFile,
  type PackagePart,
  type PartName,
} from '../../common/cloud/backup-api.js'
import { APP_DATA_DIR, PROFILE_FILES } from './system-profile.js'
import { FakephoneError } from '../../common/errors.js'
import { quoted } from '../../common/terminal-text.js'

/**
 * The one system-profile file each part but the app data holds, as makePackage reads it; the app data part holds files
 * under app-data/. Nothing else goes into a package or comes out of one: the rest of the data directory -- the command
 * journal, settings.json, clock.json -- is the phone's own state. Put back from a package (made by another phone of the
 * account, or served by the cloud), a journal with an `executing` wipe in it ran that wipe at the next start without
 * any owner's signature (F2), and one with a huge lastSeq refused every command the owner would send.
 */
const PART_FILE: Readonly<Record<Exclude<PartName, 'appData'>, string>> = {
  settings: PROFILE_FILES.preferences,
  apps: PROFILE_FILES.apps,
  launcher: PROFILE_FILES.launcher,
  wifi: PROFILE_FILES.wifi,
}

/** What part `name` may hold, in words; and whether `path` is such a file. */
function partFiles(name: PartName): { said: string; holds: (path: string) => boolean } {
  if (name === 'appData') return { said: `files under ${APP_DATA_DIR}/`, holds: (path) => path.startsWith(`${APP_DATA_DIR}/`) }
  const file = PART_FILE[name]
  return { said: file, holds: (path) => path === file }
}

async function readOptional(dataDir: string, path: string): Promise<PackageFile[]> {
  try {
    return [{ path, base64: (await readFile(join(dataDir, path))).toString('base64') }]
  } catch {
    // A wiped phone has no such file yet: the part is empty.
    return []
  }
}

/** Every file under `dir` (relative to `dataDir`), sorted. */
async function readTree(dataDir: string, dir: string): Promise<PackageFile[]> {
  let names: string[]
  try {
    names = (await readdir(join(dataDir, dir), { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(dataDir.length + 1))
  } catch {
    return []
  }
  names.sort()
  return Promise.all(names.map(async (path) => ({ path, base64: (await readFile(join(dataDir, path))).toString('base64') })))
}

/** How many entries a JSON file of the part holds (apps, icons, networks, preference keys). */
function countOf(name: PartName, files: PackageFile[]): number {
  if (name === 'appData') return files.length
  const file = files[0]
  if (!file) return 0
  const value = JSON.parse(Buffer.from(file.base64, 'base64').toString()) as unknown
  if (name === 'launcher') {
    const l = value as { dock: string[]; pages: string[][] }
    return l.dock.length + l.pages.flat().length
  }
  return Array.isArray(value) ? value.length : Object.keys(value as object).length
}

/** Reads the phone's five parts into one package. */
export async function makePackage(dataDir: string, deviceId: string, createdAt: number, settings: { pin: string }): Promise<BackupPackage> {
  const files: Record<PartName, PackageFile[]> = {
    settings: await readOptional(dataDir, PART_FILE.settings),
    apps: await readOptional(dataDir, PART_FILE.apps),
    launcher: await readOptional(dataDir, PART_FILE.launcher),
    wifi: await readOptional(dataDir, PART_FILE.wifi),
    appData: await readTree(dataDir, APP_DATA_DIR),
  }
  const part = (name: PartName, values: Record<string, string> = {}): PackagePart => ({
    files: files[name],
    count: countOf(name, files[name]) + Object.keys(values).length,
    values,
  })
  return {
    format: PACKAGE_FORMAT,
    device: deviceId,
    createdAt,
    parts: {
      settings: part('settings', { pin: settings.pin }),
      apps: part('apps'),
      launcher: part('launcher'),
      wifi: part('wifi'),
      appData: part('appData'),
    },
  }
}

/** The manifest of a package serialised as `bytes`. */
export function manifestOf(pkg: BackupPackage, bytes: Buffer): Manifest {
  return {
    format: pkg.format,
    device: pkg.device,
    createdAt: pkg.createdAt,
    size: bytes.length,
    parts: PART_NAMES.map((name) => {
      const p = pkg.parts[name]
      return { name, files: p.files.length, bytes: p.files.reduce((n, f) => n + Buffer.byteLength(f.base64, 'base64'), 0), count: p.count }
    }),
  }
}

/** A package whose parts hold files that are not theirs (see PART_FILE): refused before anything is written. */
export class PackageRefused extends FakephoneError {
  constructor(message: string) {
    super('BAD_PACKAGE', message)
  }
}

/**
 * Writes every file of the package back, each atomically; returns how many files and the settings values to apply. A
 * part holding a file that is not its own (PART_FILE) is refused, PackageRefused, before any file is written.
 */
export async function restorePackage(
  dataDir: string,
  pkg: BackupPackage,
  /** The package in words, for the refusal ("backup <id>"). */
  what: string,
): Promise<{ files: number; values: Record<string, string> }> {
  for (const name of PART_NAMES) {
    const { said, holds } = partFiles(name)
    const stray = pkg.parts[name].files.find((f) => !holds(f.path))
    if (stray)
      throw new PackageRefused(
        `${what} cannot be put on this phone: its ${name} part holds ${quoted(stray.path)}, not ${said}; nothing was restored`,
      )
  }
  let files = 0
  for (const name of PART_NAMES) {
    for (const f of pkg.parts[name].files) {
      const path = join(dataDir, f.path)
      await mkdir(dirname(path), { recursive: true })
      await writeFile(`${path}.restore`, Buffer.from(f.base64, 'base64'))
      await rename(`${path}.restore`, path)
      files++
    }
  }
  return { files, values: pkg.parts.settings.values }
}
