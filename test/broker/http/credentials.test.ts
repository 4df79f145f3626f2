/**
 * Every HTTP API of the broker reads `Authorization` as RFC 9110 says: the scheme in any case, then one or more spaces
 * (F1: the console API's bearer token; S1: a phone's HTTP Basic id and secret).
 */
import t from 'tap'
import { addDevice, startCloud } from '../../fixtures/cloud.js'

t.test('F1, S1 a bearer or basic scheme in lower or upper case is taken; another scheme or a wrong token is 401', async (t) => {
  const cloud = await startCloud(t)
  const secret = await addDevice(cloud, 'phone-a')
  const status = async (path: string, authorization: string): Promise<number> =>
    (await fetch(`${cloud.apiUrl}${path}`, { headers: { authorization } })).status
  for (const scheme of ['Bearer', 'bearer', 'BEARER'])
    t.equal(await status('/api/clock', `${scheme} ${cloud.consoleToken}`), 200, `${scheme}: the console token is taken`)
  t.equal(await status('/api/clock', `Bearer   ${cloud.consoleToken}`), 200, 'more than one space after the scheme')
  t.equal(await status('/api/clock', `Bearer wrong`), 401)
  t.equal(await status('/api/clock', `Token ${cloud.consoleToken}`), 401, 'another scheme')
  t.equal(await status('/api/clock', `Bearer`), 401, 'a scheme alone')
  t.equal(await status('/api/clock', `Bearerx ${cloud.consoleToken}`), 401, 'a scheme that only starts like it')
  const basic = Buffer.from(`phone-a:${secret}`).toString('base64')
  const blob = `/cloud/v1/blobs/${'0'.repeat(64)}?size=1`
  for (const scheme of ['Basic', 'basic']) t.equal(await status(blob, `${scheme} ${basic}`), 200, `${scheme}: the phone is taken`)
  t.equal(await status(blob, `basic ${Buffer.from(`phone-a:wrong`).toString('base64')}`), 401)
  t.equal(await status(blob, `basic ${Buffer.from(`phone-a`).toString('base64')}`), 401, 'no colon: no user and password')
  t.equal(await status(blob, `Bearer ${cloud.consoleToken}`), 401, "a phone's route takes no bearer token")
  t.equal((await fetch(`${cloud.apiUrl}/api/clock`)).status, 401, 'no Authorization at all')
})
