/**
 * Drive SDK tokens (D1, D5): the console issues a bearer token for one
 * third-party app of one account; the cloud keeps only its SHA-256, so a
 * leaked database does not leak working tokens. A revoked token is gone.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { z } from 'zod'
import type { DriveTokenSchema } from '../../common/cloud/drive-api.js'
import type { Clock } from '../../common/clock.js'
import type { Db } from '../db.js'
import { hashToken } from './drive-store.js'
import { HttpError } from '../http/router.js'
import { quoted } from '../../common/terminal-text.js'

export type DriveToken = z.infer<typeof DriveTokenSchema>

export class DriveTokens {
  private readonly sql

  constructor(
    db: Db,
    private readonly clock: Clock,
  ) {
    this.sql = {
      insert: db.prepare<[id: string, account: string, app: string, tokenHash: string, createdAt: number]>(
        'INSERT INTO drive_tokens (id, account, app, token_hash, created_at) VALUES (?, ?, ?, ?, ?)',
      ),
      find: db.prepare<[tokenHash: string], { account: string; app: string }>('SELECT account, app FROM drive_tokens WHERE token_hash = ?'),
      revoke: db.prepare<[id: string, account: string]>('DELETE FROM drive_tokens WHERE id = ? AND account = ?'),
    }
  }

  /** A new token for `app`; the only time the token itself is seen. */
  issue(account: string, app: string): DriveToken {
    const token = `fpd_${randomBytes(24).toString('base64url')}`
    const id = randomUUID()
    const createdAt = this.clock.now()
    this.sql.insert.run(id, account, app, hashToken(token), createdAt)
    return { id, account, app, createdAt, token }
  }

  /** The account and app a token was issued for, while it is not revoked. */
  verify(token: string): { account: string; app: string } | undefined {
    return this.sql.find.get(hashToken(token))
  }

  revoke(account: string, id: string): void {
    if (this.sql.revoke.run(id, account).changes === 0)
      throw new HttpError(404, 'NOT_FOUND', `no SDK token ${quoted(id)} in account ${quoted(account)}`)
  }
}
