import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { JsonFile, JsonFileError } from '../../common/json-file.js'

const Schema = z.strictObject({ n: z.number() })

t.test('a missing file loads the fallback; saves replace the file atomically with the newest value', async (t) => {
  const dir = t.testdir()
  const file = new JsonFile(join(dir, 'x.json'), Schema)
  t.same(await file.load({ n: 0 }), { n: 0 })
  await Promise.all([file.save({ n: 1 }), file.save({ n: 2 }), file.save({ n: 3 })])
  t.same(JSON.parse(readFileSync(join(dir, 'x.json'), 'utf8')), { n: 3 }, 'overlapping saves end with the newest')
  t.same(await file.load({ n: 0 }), { n: 3 })
})

t.test('a damaged file is an error that names the file and the problem', async (t) => {
  const dir = t.testdir({ 'bad.json': '{"n":"seven"}', 'dir.json': {} })
  await t.rejects(new JsonFile(join(dir, 'bad.json'), Schema).load({ n: 0 }), { code: 'INVALID', message: /bad\.json: .*n/ })
  await t.rejects(new JsonFile(join(dir, 'dir.json'), Schema).load({ n: 0 }), { code: 'EISDIR' })
  t.ok(new JsonFileError('f', 'm') instanceof Error)
  writeFileSync(join(dir, 'ro'), '')
  await t.rejects(new JsonFile(join(dir, 'missing-dir', 'x.json'), Schema).save({ n: 1 }), { code: 'ENOENT' }, 'a failed save is reported')
})
