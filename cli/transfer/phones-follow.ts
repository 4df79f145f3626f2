/**
 * M2 across devices: once a migration completed verified, the account's
 * phones follow it. The source's device verifiers go to the destination
 * (the same credentials work there; no secret travels), then the source
 * tells each phone over the push channel where its cloud is now: the
 * destination's MQTT, push and cloud URLs (common/cloud/cloud-move.ts).
 */
import { DeviceVerifiersSchema, MovedReplySchema, endpointsOf, type MovedReply } from '../../common/cloud/cloud-move.js'
import type { ConsoleClient } from '../console-client.js'

export async function phonesFollow(o: {
  source: ConsoleClient
  dest: ConsoleClient
  account: string
  to: string
  toAccount: string
}): Promise<MovedReply> {
  const enc = encodeURIComponent
  const verifiers = await o.source.read(DeviceVerifiersSchema, 'GET', `/api/accounts/${enc(o.account)}/device-verifiers`)
  await o.dest.send('PUT', `/api/accounts/${enc(o.toAccount)}/device-verifiers`, verifiers)
  const moved = { account: o.toAccount, to: endpointsOf(o.to) }
  return o.source.read(MovedReplySchema, 'POST', `/api/accounts/${enc(o.account)}/moved`, moved)
}
