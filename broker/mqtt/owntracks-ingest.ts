/**
 * F1 for devices that speak OwnTracks (common/owntracks.ts): each location a
 * device publishes on owntracks/<account>/<device id> becomes one of its
 * heartbeats. OwnTracks carries no sequence number, so the cloud numbers
 * them: one past the highest seq stored for the device (its first location
 * after a restart continues from there). A location identical to the
 * device's previous one (tst, lat, lon) is a QoS 1 redelivery, not a second fix.
 */
import { locationToHeartbeat, type Mapped, type OwnTracksLocation } from '../../common/owntracks.js'

export class OwnTracksIngest {
  private readonly last = new Map<string, { seq: number; key: string }>()

  /** `storedSeq(id)`: the highest seq stored for the device (null: none yet). */
  constructor(private readonly storedSeq: (deviceId: string) => number | null) {}

  heartbeat(deviceId: string, loc: OwnTracksLocation): Mapped {
    const prev = this.last.get(deviceId)
    const key = `${loc.tst},${loc.lat},${loc.lon}`
    if (prev?.key === key) return { ok: false, reason: 'the same location again (a redelivery)' }
    const seq = (prev?.seq ?? this.storedSeq(deviceId) ?? -1) + 1
    const mapped = locationToHeartbeat(loc, seq)
    if (mapped.ok) this.last.set(deviceId, { seq, key })
    return mapped
  }

  /** The device was removed: its numbering goes with it. */
  forget(deviceId: string): void {
    this.last.delete(deviceId)
  }
}
