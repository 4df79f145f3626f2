/**
 * M2: a cloud-moved notice names the phone's new broker with a scheme of the same one list as an agent's config and
 * `fleet run --broker` (common/config.ts MQTT_SCHEMES): each is read, any other is refused with the reason, before the
 * phone would hand it to mqtt.js (which takes an unknown scheme for plain MQTT).
 */
import t from 'tap'
import { MQTT_SCHEMES } from '../../../common/config.js'
import { readMove, secretVerifier, signMove } from '../../../common/cloud/cloud-move.js'

const notice = (mqtt: string): string =>
  JSON.stringify(
    signMove(
      {
        v: 1,
        device: 'phone-a',
        account: 'alice',
        at: 1,
        to: { mqtt, push: 'ws://127.0.0.1:1/push', cloud: 'http://127.0.0.1:1' },
      },
      secretVerifier('s3cret'),
    ),
  )

t.test('M2 a notice takes every broker scheme of the one list, and no other', (t) => {
  for (const scheme of MQTT_SCHEMES) t.equal(readMove(notice(`${scheme}//127.0.0.1:1/mqtt`), 'phone-a', 's3cret').ok, true, scheme)
  for (const scheme of ['http:', 'wx:']) {
    const body = notice('mqtt://127.0.0.1:1/mqtt').replace('mqtt://', `${scheme}//`)
    t.match(readMove(body, 'phone-a', 's3cret'), { ok: false, reason: /to\.mqtt/ }, `${scheme} refused, saying where`)
  }
  t.end()
})
