/**
 * A scenario turned into each phone's schedule, a pure function of the
 * scenario, the seed and the device ids: which group a phone is in, when it
 * starts (ramp-up) and stops (ramp-down), its heartbeat pace, battery,
 * movement, outages, switch flips, how it answers commands and what the
 * fleet's console asks of it (the ids its commands go out under also take
 * the run's own id, so no two runs send one id). Times are milliseconds from
 * the run's start.
 * Every draw comes from the phone's own stream (seed, index, purpose), so a
 * phone's plan is the same whichever shard or worker runs it.
 */
import { createHash } from 'node:crypto'
import { distanceM, RouteSource, type LocationSource, type Point } from '../agent/location.js'
import type { BatteryModel } from '../agent/battery.js'
import { Rng, hash32 } from './prng.js'
import { near, OffsetTrack, RandomWalk } from './movement.js'
import { syncSetup, type LoadedScenario, type ScenarioGroup, type SyncSetup } from './scenario.js'

/** Plans reach this far when a run has no end of its own (it runs until stopped). */
export const OPEN_HORIZON_MS = 7 * 86_400_000

/** The fleet's console sends nothing to a phone this close to its ramp-down stop: each command is answered, each notification shown. */
const ANSWER_MARGIN_MS = 5_000

export type SwitchName = ScenarioGroup['switches'][number]['name']
export type Answer = 'succeed' | 'fail' | 'ignore'
const ANSWERS: readonly Answer[] = ['succeed', 'fail', 'ignore']

export interface PhonePlan {
  index: number
  id: string
  group: string
  startAt: number
  /** When the phone stops for good (ramp-down or the end of the run); Infinity when the run is open. */
  stopAt: number
  heartbeatMs: number
  jitter: number
  battery: { level: number; model: BatteryModel }
  outages: { at: number; forMs: number }[]
  switches: { at: number; name: SwitchName; on: boolean }[]
  /**
   * A phone of a syncing group (scenario.ts syncSetup): the items seeded into its data directory before its first start
   * (with this seed for agent/phone-data/seed.ts, drawn from the run's seed and the phone's index) and its first switches;
   * undefined for the others, which get no cloud transfers.
   */
  transfers: { setup: SyncSetup; seed: number } | undefined
  /** The fleet's console: commands and notifications it sends this phone. */
  commands: { at: number; type: 'locate' | 'ring'; id: string }[]
  notifications: { at: number; id: string }[]
  /** The phone's location source, on the clock time the run started at. */
  location(runStartAt: number): LocationSource
  /** How this phone answers command `commandId`, and after how long (ms): the same every time it is asked. */
  answer(commandId: string): { answer: Answer; delayMs: number }
}

export interface FleetPlan {
  /** When the run ends (ms from its start); Infinity when it runs until stopped. */
  endAt: number
  phones: PhonePlan[]
}

/** A version-4-shaped UUID drawn from `rng`: deterministic ids for the fleet's own commands. */
export function seededUuid(rng: Rng): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(rng.next() * 16).toString(16))
  hex[12] = '4'
  hex[16] = (8 + Math.floor(rng.next() * 4)).toString(16)
  const h = hex.join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/**
 * The id a run sends planned command `planned` under: a version-4-shaped UUID from SHA-256 of the run's id and the
 * planned one. A cloud refuses a command id it has seen (409), so a second run of the same seed against the same broker
 * needs ids of its own; the phone's answer stays the planned command's (PhonePlan.answer maps the id back).
 */
function runCommandId(runId: string, planned: string): string {
  const h = createHash('sha256').update(`${runId}/${planned}`).digest('hex')
  const variant = (8 + (parseInt(h.charAt(16), 16) & 3)).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/** Times of a Poisson process with this mean gap, from `from` up to (not including) `until`. */
function poisson(rng: Rng, meanMs: number, from: number, until: number, gap = 0): number[] {
  const times: number[] = []
  for (let t = from + rng.exponential(meanMs); t < until && times.length < 100_000; t += gap + rng.exponential(meanMs))
    times.push(Math.round(t))
  return times
}

type Outage = { at: number; forMs: number }

/**
 * When something the console sends at `at` reaches the phone: at once, or, when `at` falls in one of its outages, when
 * the phone is back. The console sends nothing that would reach the phone too late to be answered or shown (planFleet):
 * it would stay queued in the cloud, or half done, and count lost.
 */
function reachedAt(outages: readonly Outage[], at: number): number {
  const away = outages.find((o) => at >= o.at && at < o.at + o.forMs)
  return away ? away.at + away.forMs : at
}

/** When the phone goes for good: at the start of an outage it is not back from by its stop (the runner leaves it down), or at its stop. */
function goneAt(outages: readonly Outage[], stopAt: number): number {
  return outages.find((o) => o.at + o.forMs >= stopAt)?.at ?? stopAt
}

/** The length of the loop a RouteSource walks (back to the first point), metres. */
const loopLengthM = (points: readonly Point[]): number =>
  points.reduce((sum, p, i) => sum + distanceM(p, points[(i + 1) % points.length] as Point), 0)

function locationOf(loaded: LoadedScenario, groupIndex: number, seed: string, index: number): (runStartAt: number) => LocationSource {
  const m = (loaded.scenario.groups[groupIndex] as ScenarioGroup).movement
  const rng = Rng.stream(seed, index, 'movement')
  switch (m.type) {
    case 'random-walk':
      return (runStartAt) =>
        new RandomWalk(
          {
            centre: { lat: m.centre[0], lon: m.centre[1] },
            radiusM: m.radiusM,
            speedMps: m.speedMps,
            stepMs: m.stepEvery,
            startAt: runStartAt,
          },
          rng,
        )
    case 'gpx': {
      const north = rng.between(-m.offsetM, m.offsetM)
      const east = rng.between(-m.offsetM, m.offsetM)
      const phase = rng.next()
      // checkScenario read every gpx group's track.
      const points = loaded.tracks.get(groupIndex) as Point[]
      return (runStartAt) => {
        const track = new RouteSource(points, m.speedMps, runStartAt)
        // One lap takes at most this long; the phone starts somewhere along it.
        const lapMs = (loopLengthM(points) / m.speedMps) * 1000
        return new OffsetTrack(track, phase * lapMs, north, east)
      }
    }
    case 'stationary': {
      const at = near({ lat: m.at[0], lon: m.at[1] }, m.spreadM, rng)
      return () => ({ fix: () => ({ ...at, accuracy: 10, speed: 0 }) })
    }
  }
}

/** When each phone starts and stops, from the stages; `durationMs` (when given) cuts the run short. */
function timeline(
  loaded: LoadedScenario,
  count: number,
  durationMs: number | undefined,
): { starts: number[]; stops: number[]; endAt: number } {
  const stages = loaded.scenario.stages
  const up = stages.find((s) => s.kind === 'ramp-up')
  const down = stages.find((s) => s.kind === 'ramp-down')
  const starts = Array.from({ length: count }, (_, k) => (up ? Math.floor((k * 1000) / up.rate) : 0))
  const upEnd = starts[count - 1] ?? 0
  const steady = stages.reduce((sum, s) => sum + (s.kind === 'steady' ? s.for : 0), 0)
  const open = stages.length === 0 || (!down && steady === 0 && durationMs === undefined)
  let stops = Array.from({ length: count }, (_, k) =>
    down ? upEnd + steady + Math.floor((k * 1000) / down.rate) : open ? Infinity : upEnd + steady,
  )
  let endAt = Math.max(upEnd, ...stops.slice(-1), 0)
  if (durationMs !== undefined) {
    endAt = durationMs
    stops = stops.map((s) => Math.min(s, durationMs))
  }
  return { starts, stops, endAt: stops.length === 0 && durationMs === undefined && open ? Infinity : endAt }
}

/**
 * The fleet's plan. `runId`, when given, is this run's own: the console's commands go out under ids made from it and the
 * planned ids (runCommandId), so each run's ids are new to the cloud while everything else, answers included, is the
 * seed's; without it the commands keep their planned ids.
 */
export function planFleet(loaded: LoadedScenario, seed: string, ids: readonly string[], durationMs?: number, runId?: string): FleetPlan {
  const { scenario } = loaded
  const { starts, stops, endAt } = timeline(loaded, ids.length, durationMs)
  const shares = scenario.groups.map((g) => g.share)
  // One per group, shared by its phones: a phone of a group that does not sync holds nothing more.
  const setups = scenario.groups.map(syncSetup)
  const phones = ids.map((id, index): PhonePlan => {
    const groupIndex = Rng.stream(seed, index, 'group').weighted(shares)
    const g = scenario.groups[groupIndex] as ScenarioGroup
    const startAt = starts[index] as number
    const stopAt = stops[index] as number
    const horizon = Math.min(stopAt, startAt + OPEN_HORIZON_MS)
    const battery = Rng.stream(seed, index, 'battery')
    const outages = g.outages
      ? poisson(Rng.stream(seed, index, 'outages'), g.outages.every, startAt, horizon, g.outages.for).map((at) => ({
          at,
          forMs: (g.outages as { for: number }).for,
        }))
      : []
    const picked = new Map<string, number>()
    const switches = g.switches
      .filter((s) => {
        if (!picked.has(s.name)) picked.set(s.name, Rng.stream(seed, index, `switch/${s.name}`).next())
        return (picked.get(s.name) as number) < s.share && s.at >= startAt && s.at < stopAt
      })
      .map((s) => ({ at: s.at, name: s.name, on: s.on }))
      .sort((a, b) => a.at - b.at)
    // A phone the ramp-down stops, or that goes into an outage it is not back from by its stop, is gone before the run
    // waits for the answers: the console leaves it a margin before it goes.
    const gone = goneAt(outages, stopAt)
    const early = gone < endAt
    const commandsUntil = early ? Math.min(horizon, gone) - ANSWER_MARGIN_MS - g.commands.delay.max : horizon
    const notificationsUntil = early ? Math.min(horizon, gone) - ANSWER_MARGIN_MS : horizon
    const consoleCmds = scenario.console.commands
    const cmdRng = Rng.stream(seed, index, 'console/commands')
    /** The run's command ids and the planned ids they stand for (only with a run id, and only for phones with commands). */
    let planned: Map<string, string> | undefined
    const commands = consoleCmds
      ? poisson(cmdRng, consoleCmds.every, startAt, horizon)
          .map((at) => ({
            at,
            type: consoleCmds.types[Math.floor(cmdRng.next() * consoleCmds.types.length)] as 'locate' | 'ring',
            id: seededUuid(cmdRng),
          }))
          // Drawn first, dropped after: the phone's other commands keep their types and ids.
          .filter((c) => reachedAt(outages, c.at) < commandsUntil)
          .map((c) => {
            if (runId === undefined) return c
            const sent = runCommandId(runId, c.id)
            ;(planned ??= new Map()).set(sent, c.id)
            return { at: c.at, type: c.type, id: sent }
          })
      : []
    const notifyRng = Rng.stream(seed, index, 'console/notifications')
    const notifications = scenario.console.notifications
      ? poisson(notifyRng, scenario.console.notifications.every, startAt, horizon)
          .map((at) => ({ at, id: seededUuid(notifyRng) }))
          .filter((n) => reachedAt(outages, n.at) < notificationsUntil)
      : []
    const setup = setups[groupIndex]
    const weights = [g.commands.answer.succeed, g.commands.answer.fail, g.commands.answer.ignore]
    const { min, max } = g.commands.delay
    return {
      index,
      id,
      group: g.name,
      startAt,
      stopAt,
      heartbeatMs: g.heartbeat.every,
      jitter: g.heartbeat.jitter,
      battery: {
        level: battery.between(g.battery.level[0], g.battery.level[1]),
        model: { drainPerHour: g.battery.drainPerHour, chargePerHour: g.battery.chargePerHour, plugAt: g.battery.plugAt },
      },
      outages,
      switches,
      transfers: setup ? { setup, seed: Math.floor(Rng.stream(seed, index, 'data').next() * 2 ** 32) } : undefined,
      commands,
      notifications,
      location: locationOf(loaded, groupIndex, seed, index),
      answer: (commandId) => {
        const rng = new Rng(hash32(`${seed}/${index}/answer/${planned?.get(commandId) ?? commandId}`))
        return { answer: ANSWERS[rng.weighted(weights)] as Answer, delayMs: Math.round(rng.between(min, max)) }
      },
    }
  })
  return { endAt, phones }
}
