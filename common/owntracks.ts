/**
 * The OwnTracks wire format (`fakephone fleet run --profile owntracks`, and
 * what fakephone's broker takes from a device that speaks it): zod schemas
 * for the payloads, the topics, and the one mapping between an OwnTracks
 * location and a fakephone heartbeat (F1). Source: the OwnTracks booklet,
 * "JSON" (owntracks.org/booklet/tech/json, repository owntracks/booklet,
 * docs/tech/json.md), and "Regions (Waypoints)" (booklet/features/waypoints).
 *
 * Topics: an app publishes `_type=location` and its `_type=lwt` (its MQTT last
 * will) to `owntracks/USER/DEVICE`, `_type=transition` to `.../event`, and
 * subscribes to `owntracks/USER/DEVICE/cmd` for remote commands.
 *
 * `_type=location` fields used here (booklet wording in brackets):
 *  - `tst` [UNIX epoch timestamp in seconds of the location fix; integer, required]
 *  - `lat`, `lon` [float, degree, required]
 *  - `acc` [accuracy of the reported location in meters; integer]
 *  - `batt` [device battery level; integer, percent]
 *  - `bs` [battery status 0=unknown, 1=unplugged, 2=charging, 3=full]
 *  - `vel` [velocity; integer, km/h]
 *  - `conn` [internet connectivity: `w` WiFi, `o` offline, `m` mobile data]
 *  - `tid` [tracker ID; defaults to the last two characters of the topic]
 *  - `t` [trigger: `p` ping, `c` circular region, `b` beacon, `r` response to a
 *    reportLocation cmd, `u` manual, `t` timer in move mode, `v` frequent
 *    locations; a missing `t` means an automatic update]
 *  - `created_at` [when the message was constructed, vs `tst` the fix]
 *  - "The acc, alt, cog, vac, vel elements are only added if they are not zero."
 * Other booklet fields (alt, cog, vac, p, inregions, inrids, SSID, BSSID, topic)
 * are accepted and not produced: a fake phone has no altimeter or WLAN name.
 *
 * `_type=lwt`: `tst` [the time at which the app first connected].
 * `_type=transition` (published non-retained): `wtst`, `lat`, `lon`, `tst`, `acc`,
 * `event` (`enter`|`leave`), `desc`, `tid`, `t` (`c`|`b`|`l`), `rid`.
 * `_type=cmd`: `action`, of which `reportLocation` [triggers the publish of a
 * location message; send with QoS>0].
 *
 * QoS and retain follow the apps' defaults (booklet configuration: `pubQos`,
 * `pubRetain`, `willQos`, `willRetain`): locations QoS 1 retained, the last
 * will QoS 1 not retained, transitions QoS 1 not retained.
 */
import { z } from 'zod'
import { HeartbeatSchema, accountSegment, type Heartbeat, type Network } from './contract.js'

export const OWNTRACKS_ROOT = 'owntracks'

const Epoch = z.number().int().nonnegative()
const Lat = z.number().min(-90).max(90)
const Lon = z.number().min(-180).max(180)

export const OwnTracksLocationSchema = z.object({
  _type: z.literal('location'),
  tst: Epoch,
  lat: Lat,
  lon: Lon,
  acc: z.number().int().nonnegative().optional(),
  alt: z.number().int().optional(),
  batt: z.number().int().min(0).max(100).optional(),
  bs: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]).optional(),
  cog: z.number().int().optional(),
  vel: z.number().int().nonnegative().optional(),
  vac: z.number().int().optional(),
  p: z.number().optional(),
  t: z.enum(['p', 'c', 'b', 'r', 'u', 't', 'v']).optional(),
  tid: z.string().max(64).optional(),
  conn: z.enum(['w', 'o', 'm']).optional(),
  created_at: Epoch.optional(),
  inregions: z.array(z.string()).optional(),
})
export type OwnTracksLocation = z.infer<typeof OwnTracksLocationSchema>

export const OwnTracksLwtSchema = z.object({ _type: z.literal('lwt'), tst: Epoch })
export type OwnTracksLwt = z.infer<typeof OwnTracksLwtSchema>

export const OwnTracksTransitionSchema = z.object({
  _type: z.literal('transition'),
  wtst: Epoch,
  lat: Lat,
  lon: Lon,
  tst: Epoch,
  acc: z.number().nonnegative(),
  event: z.enum(['enter', 'leave']),
  desc: z.string().optional(),
  tid: z.string().optional(),
  t: z.enum(['c', 'b', 'l']).optional(),
  rid: z.string().optional(),
})
export type OwnTracksTransition = z.infer<typeof OwnTracksTransitionSchema>

export const OwnTracksCmdSchema = z.object({ _type: z.literal('cmd'), action: z.string().min(1) })
export type OwnTracksCmd = z.infer<typeof OwnTracksCmdSchema>

/** What a device publishes on its base topic. */
export const OwnTracksBaseSchema = z.discriminatedUnion('_type', [OwnTracksLocationSchema, OwnTracksLwtSchema])
export type OwnTracksBase = z.infer<typeof OwnTracksBaseSchema>

/**
 * `owntracks/USER/DEVICE`, or a sub-topic of it (`cmd`, `event`). USER is the device's account name, which the
 * account-name rule keeps to one topic level without wildcards; the name of an account made before the rule is encoded
 * (contract.ts, accountSegment), so it too is one level and never a wildcard.
 */
export function owntracksTopic(user: string, device: string, sub?: 'cmd' | 'event'): string {
  return `${OWNTRACKS_ROOT}/${accountSegment(user)}/${device}${sub ? `/${sub}` : ''}`
}

/** Splits `owntracks/USER/DEVICE[/SUB]`; anything else (including wildcards) is null. */
export function parseOwnTracksTopic(topic: string): { user: string; device: string; sub: string | null } | null {
  const m = /^owntracks\/([^/+#]+)\/([^/+#]+)(?:\/([^/+#]+))?$/.exec(topic)
  return m ? { user: m[1] as string, device: m[2] as string, sub: m[3] ?? null } : null
}

/** The default tracker id: the last two characters of the device's topic. */
const trackerId = (device: string): string => device.slice(-2)

const CONN: Record<Network, 'w' | 'm' | 'o'> = { wifi: 'w', mobile: 'm', none: 'o' }
const NETWORK = { w: 'wifi', m: 'mobile', o: 'none' } as const

/** A phone's reading as an OwnTracks location; `t` the trigger (none: an automatic update). */
export function locationPayload(reading: Omit<Heartbeat, 'seq'>, device: string, t?: 'r' | 'u', createdAt = reading.at): OwnTracksLocation {
  const acc = Math.round(reading.accuracy)
  const vel = Math.round(reading.speed * 3.6)
  return OwnTracksLocationSchema.parse({
    _type: 'location',
    tst: Math.floor(reading.at / 1000),
    lat: reading.lat,
    lon: reading.lon,
    // Only added when not zero (booklet).
    ...(acc > 0 ? { acc } : {}),
    batt: Math.round(reading.battery),
    bs: reading.charging ? (reading.battery >= 100 ? 3 : 2) : 1,
    ...(vel > 0 ? { vel } : {}),
    conn: CONN[reading.network],
    tid: trackerId(device),
    ...(t ? { t } : {}),
    created_at: Math.floor(createdAt / 1000),
  })
}

export type Mapped = { ok: true; value: Heartbeat } | { ok: false; reason: string }

/**
 * F1: an OwnTracks location as a fakephone heartbeat, numbered `seq` by the
 * cloud (OwnTracks has no sequence number). `batt` is required: a heartbeat
 * carries the battery. A missing `conn` reads as wifi, a missing `acc` or
 * `vel` as 0 (the booklet leaves out zeros); `bs` 2 or 3 is charging.
 */
export function locationToHeartbeat(loc: OwnTracksLocation, seq: number): Mapped {
  if (loc.batt === undefined) return { ok: false, reason: 'batt is missing: a heartbeat carries the battery level' }
  const hb = HeartbeatSchema.safeParse({
    seq,
    at: loc.tst * 1000,
    lat: loc.lat,
    lon: loc.lon,
    accuracy: loc.acc ?? 0,
    speed: (loc.vel ?? 0) / 3.6,
    battery: loc.batt,
    charging: loc.bs === 2 || loc.bs === 3,
    network: loc.conn ? NETWORK[loc.conn] : 'wifi',
  })
  return hb.success ? { ok: true, value: hb.data } : { ok: false, reason: z.prettifyError(hb.error).replace(/\n+/g, '; ') }
}
