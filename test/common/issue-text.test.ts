/** common/issue-text: zod's issues in one line, each by its field and what the field takes (F2's command arguments). */
import t from 'tap'
import { z } from 'zod'
import { issuesText } from '../../common/issue-text.js'

const problems = (schema: z.ZodType, value: unknown): string => {
  const result = schema.safeParse(value, { reportInput: true })
  return result.success ? 'valid' : issuesText(result.error)
}

t.test('F2 each issue names its field by its path and says what the field takes', async (t) => {
  const schema = z.strictObject({ ring: z.strictObject({ seconds: z.number(), tones: z.array(z.string()) }), at: z.bigint() })
  t.equal(
    problems(schema, { ring: { seconds: 'x'.repeat(50), volume: 3, pitch: 1 }, at: 1 }),
    `ring.seconds must be a number, not "${'x'.repeat(39)}…; ring.tones is missing: give a list, [...]; ` +
      'unknown fields "volume", "pitch" in ring; at must be bigint, not 1',
    'nested fields by their dotted path; a long value cut short; a type without words by its name',
  )
  t.equal(problems(z.strictObject({}), { sdcard: true }), 'unknown field "sdcard"')
  t.equal(problems(z.string().min(2), 'a'), 'the value: Too small: expected string to have >=2 characters')
})
