/** M2's device credentials moving between clouds: what a source cloud may hand the destination for its devices. */
import t from 'tap'
import { ConsoleClient } from '../../../cli/console-client.js'
import { secretVerifier } from '../../../common/cloud/cloud-move.js'
import { addDevice, startCloud } from '../../fixtures/cloud.js'

t.test(
  "M2: a device verifier from the source cloud is one fakephone writes; a scrypt cost of the source's choosing is refused",
  async (t) => {
    const cloud = await startCloud(t)
    await addDevice(cloud, 'phone-a', 'alice')
    const api = new ConsoleClient(cloud.apiUrl, cloud.consoleToken)
    const put = (verifier: string): Promise<unknown> =>
      api.send('PUT', '/api/accounts/alice/device-verifiers', { devices: [{ id: 'phone-a', verifier }] })
    const salt = Buffer.alloc(16, 1).toString('base64')
    const key = Buffer.alloc(32, 2).toString('base64')
    // Each login attempt for phone-a, by anyone, would have run scrypt at this cost in the broker's thread pool.
    await t.rejects(put(`scrypt$16384$${salt}$${key}`), { status: 400, message: /bad device verifiers/ })
    await t.rejects(put(`scrypt$1048576$${salt}$${key}`), { status: 400, message: /bad device verifiers/ })
    t.match(await put(`scrypt$1024$${salt}$${key}`), { devices: ['phone-a'] }, "an older fakephone's verifier moves")
    t.match(await put(secretVerifier('the secret')), { devices: ['phone-a'] })
  },
)
