/**
 * B1: what a phone has besides the user's files -- its system preferences,
 * installed apps, home-screen layout, saved Wi-Fi networks and the apps'
 * own data -- as real files under the data directory, made on first start
 * and the same for the same device id every time:
 *
 *   <data>/system/preferences.json   language, time zone, ringtone, brightness, ...
 *   <data>/system/apps.json          installed apps
 *   <data>/system/launcher.json      home-screen pages and dock
 *   <data>/system/wifi.json          saved networks
 *   <data>/app-data/<package>/...    each app's preferences and database
 *
 * A wipe (agent/wipe.ts) removes them all; a restore puts them back.
 */
import { createHash } from 'node:crypto'
import { access, mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

const SYSTEM_DIR = 'system'
export const APP_DATA_DIR = 'app-data'
export const PROFILE_FILES = {
  preferences: `${SYSTEM_DIR}/preferences.json`,
  apps: `${SYSTEM_DIR}/apps.json`,
  launcher: `${SYSTEM_DIR}/launcher.json`,
  wifi: `${SYSTEM_DIR}/wifi.json`,
} as const

const CATALOGUE = [
  ['com.whatsapp', 'WhatsApp'],
  ['com.spotify.music', 'Spotify'],
  ['com.google.android.apps.maps', 'Maps'],
  ['org.telegram.messenger', 'Telegram'],
  ['com.duolingo', 'Duolingo'],
  ['com.strava', 'Strava'],
  ['com.booking', 'Booking.com'],
  ['com.instagram.android', 'Instagram'],
  ['com.ubercab', 'Uber'],
  ['org.mozilla.firefox', 'Firefox'],
  ['com.miui.notes', 'Notes'],
  ['com.android.camera', 'Camera'],
] as const
const NETWORKS = ['HomeNet', 'Office-5G', 'CafeLuna', 'TrainWiFi', 'Library-Guest', 'eduroam'] as const

/** A small deterministic random source seeded by the device id. */
function seeded(deviceId: string): () => number {
  let counter = 0
  return () => createHash('sha256').update(`${deviceId}:${counter++}`).digest().readUInt32BE(0) / 2 ** 32
}

interface ProfileFile {
  path: string
  bytes: Buffer
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value, null, 2) + '\n')

/** The profile a phone with `deviceId` starts with. */
export function systemProfile(deviceId: string): ProfileFile[] {
  const rnd = seeded(deviceId)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T
  const apps = CATALOGUE.filter(() => rnd() < 0.75).map(([pkg, name]) => ({
    package: pkg,
    name,
    version: `${1 + Math.floor(rnd() * 20)}.${Math.floor(rnd() * 10)}.${Math.floor(rnd() * 100)}`,
  }))
  const packages = apps.map((a) => a.package)
  const files: ProfileFile[] = [
    {
      path: PROFILE_FILES.preferences,
      bytes: json({
        language: pick(['en-GB', 'de-DE', 'fr-FR', 'zh-CN', 'es-ES']),
        timeZone: pick(['Europe/London', 'Europe/Berlin', 'Asia/Shanghai', 'America/New_York']),
        ringtone: pick(['Orbit', 'Pebble', 'Dawn', 'Mi Tune']),
        brightness: Math.round(rnd() * 100),
        darkMode: rnd() < 0.5,
        fontScale: pick([0.9, 1, 1.1, 1.3]),
        screenTimeoutS: pick([30, 60, 120, 300]),
      }),
    },
    { path: PROFILE_FILES.apps, bytes: json(apps) },
    {
      path: PROFILE_FILES.launcher,
      bytes: json({ dock: packages.slice(0, 4), pages: [packages.slice(4, 8), packages.slice(8)].filter((p) => p.length > 0) }),
    },
    {
      path: PROFILE_FILES.wifi,
      bytes: json(
        NETWORKS.filter(() => rnd() < 0.6).map((ssid) => ({
          ssid,
          security: pick(['WPA2-PSK', 'WPA3-SAE', 'open']),
          psk: createHash('sha256').update(`${deviceId}/${ssid}`).digest('hex').slice(0, 16),
        })),
      ),
    },
  ]
  for (const pkg of packages.slice(0, 5)) {
    files.push({
      path: `${APP_DATA_DIR}/${pkg}/shared_prefs/settings.json`,
      bytes: json({ firstRun: false, theme: pick(['light', 'dark', 'system']), lastOpened: Math.floor(rnd() * 1e6) }),
    })
    const db = Buffer.alloc(64 + Math.floor(rnd() * 512))
    for (let i = 0; i < db.length; i++) db[i] = Math.floor(rnd() * 256)
    files.push({ path: `${APP_DATA_DIR}/${pkg}/databases/main.db`, bytes: db })
  }
  return files
}

/** Writes the profile when the phone has none yet (first start, or after a wipe and a restart). */
export async function ensureSystemProfile(dataDir: string, deviceId: string): Promise<boolean> {
  try {
    await access(join(dataDir, PROFILE_FILES.apps))
    return false
  } catch {
    for (const f of systemProfile(deviceId)) {
      await mkdir(dirname(join(dataDir, f.path)), { recursive: true })
      await writeFile(join(dataDir, f.path), f.bytes)
    }
    return true
  }
}
