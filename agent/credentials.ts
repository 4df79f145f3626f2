/**
 * F1, X1: a phone's one copy of its device id and secret, and of what is derived from the secret (the cloud's HTTP Basic
 * header, the receipt-signing key). Every part that sends or uses the secret -- the MQTT data channel's password
 * (common/mqtt.ts), the push channel's hello, the `cloud-moved` notice's check (M2), the cloud client's calls, the
 * command receipts (F2) -- reads it here at the moment it needs it, so a device removed and added again, whose agent
 * read the new secret from its file (agent.ts), uses that new secret everywhere from then on; none can keep an old copy.
 * What is derived is made on first use and kept until the secret changes: a fleet's phones mostly never sign a receipt
 * nor call the cloud over HTTP, and deriving the key (~1 ms) once per command would be paid again and again.
 */
import type { KeyObject } from 'node:crypto'
import { deviceKeys } from '../common/signing.js'

export class DeviceCredentials {
  readonly deviceId: string
  private secretNow: string
  /** `Basic base64(id:secret)`, made on first use; undefined again once the secret changes. */
  private basic: string | undefined
  /** The receipt-signing key, derived on first use; undefined again once the secret changes. */
  private signingKey: KeyObject | undefined

  constructor(deviceId: string, secret: string) {
    this.deviceId = deviceId
    this.secretNow = secret
  }

  /** The device secret as it is now. Never logged. */
  get secret(): string {
    return this.secretNow
  }

  /** F1, X1: the device was given a new secret; true when it differs from the one held (what was derived goes with it). */
  replace(secret: string): boolean {
    if (secret === this.secretNow) return false
    this.secretNow = secret
    this.basic = undefined
    this.signingKey = undefined
    return true
  }

  /** The HTTP Basic `authorization` header of the device's calls to the cloud. */
  get authorization(): string {
    return (this.basic ??= `Basic ${Buffer.from(`${this.deviceId}:${this.secretNow}`).toString('base64')}`)
  }

  /** F2: the private key the phone signs its command receipts with (common/signing.ts deviceKeys). */
  get receiptKey(): KeyObject {
    return (this.signingKey ??= deviceKeys(this.secretNow).privateKey)
  }
}
