/**
 * A simulated battery: drains while unplugged, charges while plugged in,
 * and plugs itself in at `plugAt` percent and out when full -- a phone that
 * lives on a desk. Its level is a function of the injected clock.
 */
import { createHash } from 'node:crypto'
export interface BatteryModel {
  /** percent per hour while unplugged */
  drainPerHour: number
  /** percent per hour while charging */
  chargePerHour: number
  plugAt: number
}

const DEFAULT_BATTERY: BatteryModel = { drainPerHour: 4, chargePerHour: 40, plugAt: 15 }

export class Battery {
  private at: number
  private level: number
  private charging = false

  constructor(
    start: { level: number; at: number },
    private readonly model: BatteryModel = DEFAULT_BATTERY,
  ) {
    this.level = start.level
    this.at = start.at
  }

  /** The charge at `now`, as an integer percent (what a phone shows), and whether it is charging. */
  read(now: number): { level: number; charging: boolean } {
    let hours = Math.max(0, now - this.at) / 3_600_000
    this.at = now
    while (hours > 0) {
      const rate = this.charging ? this.model.chargePerHour : -this.model.drainPerHour
      const target = this.charging ? 100 : this.model.plugAt
      const toTarget = (target - this.level) / rate
      if (toTarget > hours) {
        this.level += rate * hours
        break
      }
      if (toTarget > 0) {
        this.level = target
        hours -= toTarget
      }
      this.charging = !this.charging
    }
    return { level: Math.round(this.level), charging: this.charging }
  }
}

/** When every phone's own battery curve starts (deviceBattery): a fixed time, so a restart finds it where it left it. */
const BATTERY_EPOCH = Date.UTC(2026, 0, 1)

/**
 * A phone's battery when nobody set one (a single `fakephone agent`): a curve of its device id and the clock alone, at a
 * level of 60-100 % drawn from the id at BATTERY_EPOCH and drained and charged by the model since. A restart (a Pi
 * rebooted, the agent killed) finds the battery where the curve is now, as a phone's battery carries on while its app
 * is down, instead of a level drawn anew; and no file holds it, so a crash loses nothing. Phones of other ids are at
 * other points of the cycle.
 */
export function deviceBattery(deviceId: string): Battery {
  const level = 60 + (createHash('sha256').update(deviceId).digest().readUInt32BE(0) % 41)
  return new Battery({ level, at: BATTERY_EPOCH })
}
