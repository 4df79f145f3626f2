/**
 * M2: transfer grants, the credential a destination cloud pulls an account's
 * blobs from this (the source) cloud with, so the console's bytes need not
 * pass through the console and the console token never leaves it. A grant
 * is a random token the console asks for one account; it lets its holder do
 * one thing, the batch read of that account's blobs
 * (`POST /api/accounts/:account/blobs/read`, the router's `grant` caller),
 * and only until GRANT_TTL_MS after it was issued on the cloud's clock
 * (checked when a read starts: a read under way is not cut). Only its
 * SHA-256 is kept, in memory: a stopped cloud forgets every grant, and the
 * console revokes each one as soon as the batch it was for is done.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { TransferGrant } from '../../common/cloud/blob-batch.js'
import type { Clock } from '../../common/clock.js'
import { hashToken } from '../cloud/drive-store.js'

/** How long a grant may be used after it is issued: the console asks for one per batch and uses it at once. */
export const GRANT_TTL_MS = 60_000

interface Held {
  id: string
  account: string
  expiresAt: number
}

export class TransferGrants {
  /** By the token's SHA-256. */
  private readonly held = new Map<string, Held>()

  constructor(private readonly clock: Clock) {}

  /** A new grant for `account`'s batch read; the only time its token is seen. */
  issue(account: string): TransferGrant {
    this.sweep()
    const token = `fpg_${randomBytes(24).toString('base64url')}`
    const grant = { id: randomUUID(), account, expiresAt: this.clock.now() + GRANT_TTL_MS }
    this.held.set(hashToken(token), grant)
    return { ...grant, token }
  }

  /** The account a grant is for, while it is neither expired nor revoked. */
  verify(token: string): { account: string } | undefined {
    const grant = this.held.get(hashToken(token))
    return grant !== undefined && this.clock.now() < grant.expiresAt ? { account: grant.account } : undefined
  }

  /** Revokes grant `id` of `account`; false when there is none (revoked, expired and swept, or another account's). */
  revoke(account: string, id: string): boolean {
    for (const [hash, grant] of this.held) if (grant.id === id && grant.account === account) return this.held.delete(hash)
    return false
  }

  /** Expired grants go when the next is issued, so a console that died mid-migration leaves none behind for long. */
  private sweep(): void {
    const now = this.clock.now()
    for (const [hash, grant] of this.held) if (now >= grant.expiresAt) this.held.delete(hash)
  }
}
