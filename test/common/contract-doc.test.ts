/**
 * docs/CONTRACT.md is what a third party writes its own device or console from: its topics table, every JSON example
 * of a topic's payload and its signing test vectors are checked here against common/contract.ts and common/signing.ts,
 * so the doc cannot say one thing while the broker and the agent do another.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import type { z } from 'zod'
import { AccountChangedSchema, CommandChangedSchema, TOPICS, decodeValue, type TopicKind } from '../../common/contract.js'
import { canonical, deviceKeys, publicKeyPem, signPayload, verifyPayload } from '../../common/signing.js'

const doc = readFileSync(new URL('../../docs/CONTRACT.md', import.meta.url), 'utf8')

const isKind = (kind: string): kind is TopicKind => Object.hasOwn(TOPICS, kind)

/** The doc cut at its headings: each heading's title (without the #s) and the text under it, to the next heading. */
function sections(text: string): { title: string; body: string }[] {
  return text
    .split(/^(?=#{1,6} )/m)
    .map((part) => {
      const [heading = '', ...body] = part.split('\n')
      return { title: heading.replace(/^#+ /, ''), body: body.join('\n') }
    })
    .filter(({ title }) => title !== '')
}

/** The section titled `title`, which the doc must have. */
function section(title: string): string {
  const found = sections(doc).find((s) => s.title === title)
  if (!found) throw new Error(`docs/CONTRACT.md has no section "${title}"`)
  return found.body
}

/** The fenced blocks of `body` tagged `lang` ('' for untagged ones), their text. */
const fenced = (body: string, lang: string): string[] =>
  [...body.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm'))].map((m) => (m[1] ?? '').trimEnd())

/** Inline code spans holding a JSON object, outside table rows; one with `…` in it is an elision, not an example. */
const inlineObjects = (body: string): string[] =>
  body
    .split('\n')
    .filter((line) => !line.startsWith('|'))
    .join('\n')
    .match(/`\{"[^`]*\}`/g)
    ?.map((span) => span.slice(1, -1))
    .filter((span) => !span.includes('…')) ?? []

/** The section of each topic's payload, by the title the doc gives it. */
const SECTION_KIND: Record<string, TopicKind> = {
  Heartbeat: 'heartbeat',
  Presence: 'presence',
  Status: 'status',
  'Cloud time': 'time',
  Command: 'cmd',
  Result: 'result',
  Logs: 'logs',
}

/** A row of the topics table: its topic, direction, QoS, retain flag and payload cell. */
const TABLE_ROW = /^\| `(fp\/v1\/[^`]+)` \| ([^|]+) \| (\d) \| (yes|no)[^|]* \| (.*) \|$/gm

/** Every example of a topic's payload the doc gives: where it is, the schema it must parse with, its text. */
function examples(): { where: string; schema: z.ZodType; kind: string; text: string }[] {
  const found: { where: string; schema: z.ZodType; kind: string; text: string }[] = []
  for (const { title, body } of sections(doc)) {
    const kind = SECTION_KIND[title]
    if (kind === undefined) continue
    for (const text of [...fenced(body, 'json'), ...inlineObjects(body)])
      found.push({ where: `section "${title}"`, schema: TOPICS[kind].schema, kind, text })
  }
  // A payload given right after its topic's name, anywhere: "publishes it on `fp/v1/<device>/plan`: `{…}`".
  for (const [, kind = '', text = ''] of doc.matchAll(/`fp\/v1\/<device>\/([a-z]+)`[\s:(]*`(\{"[^`]*\})`/g)) {
    if (isKind(kind) && !text.includes('…')) found.push({ where: `after fp/v1/<device>/${kind}`, schema: TOPICS[kind].schema, kind, text })
  }
  for (const [, topic = '', , , , payload = ''] of doc.matchAll(TABLE_ROW)) {
    const kind = /^fp\/v1\/<device>\/([a-z]+)$/.exec(topic)?.[1]
    const schema =
      kind !== undefined && isKind(kind)
        ? TOPICS[kind].schema
        : topic === 'fp/v1/accounts/<account>/changed'
          ? AccountChangedSchema
          : topic === 'fp/v1/commands/<device>/changed'
            ? CommandChangedSchema
            : undefined
    if (schema === undefined) throw new Error(`the topics table has a topic the contract does not know: ${topic}`)
    for (const text of payload.match(/`\{"[^`]*\}`/g) ?? [])
      if (!text.includes('…')) found.push({ where: `the topics table's ${topic}`, schema, kind: kind ?? topic, text: text.slice(1, -1) })
  }
  return found
}

t.test('docs/CONTRACT.md: the topics table gives each topic the direction, QoS and retain flag of the contract', (t) => {
  const rows = new Map<string, { direction: string; qos: number; retain: boolean }>()
  for (const [, topic = '', direction = '', qos, retain] of doc.matchAll(TABLE_ROW))
    rows.set(topic, { direction: direction.trim(), qos: Number(qos), retain: retain === 'yes' })
  for (const [kind, spec] of Object.entries(TOPICS))
    t.same(
      rows.get(`fp/v1/<device>/${kind}`),
      { direction: spec.direction, qos: spec.qos, retain: spec.retain },
      `${kind}: its row says what common/contract.ts does`,
    )
  t.end()
})

t.test('F1 F2 docs/CONTRACT.md: every JSON example of a payload parses with its topic schema, and every topic has one', (t) => {
  const all = examples()
  for (const { where, schema, kind, text } of all) {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (err) {
      t.fail(`${where}: ${kind} example is not JSON (${(err as Error).message}): ${text}`)
      continue
    }
    const decoded = decodeValue(schema, value)
    t.ok(decoded.ok, `${where}: ${kind} example parses${decoded.ok ? '' : `: ${decoded.reason}`}`)
  }
  const kinds = new Set(all.map((e) => e.kind))
  for (const kind of [...Object.keys(TOPICS), 'fp/v1/accounts/<account>/changed', 'fp/v1/commands/<device>/changed'])
    t.ok(kinds.has(kind), `${kind} has an example`)
  t.end()
})

t.test('F2 docs/CONTRACT.md: the signing test vectors are the canonical bytes, keys and signatures the code makes', (t) => {
  const signing = section('Signing, exactly')
  const [ownerPem = '', commandBytes, devicePem = '', receiptBytes] = fenced(signing, '')
  const ownerKey = createPrivateKey(ownerPem)
  t.equal(
    publicKeyPem(createPublicKey(ownerKey)).trim(),
    ownerPem.slice(ownerPem.indexOf('-----BEGIN PUBLIC KEY-----')),
    'the owner key pair',
  )
  t.same(ownerKey.export({ format: 'jwk' }).d, Buffer.alloc(32, 7).toString('base64url'), 'the owner key is the seed the doc names')

  const command = JSON.parse(fenced(section('Command'), 'json')[0] ?? '{}') as { sig: string }
  const { sig: commandSig, ...unsignedCommand } = command
  t.equal(canonical(unsignedCommand), commandBytes, "the command's canonical bytes")
  t.equal(signPayload(unsignedCommand, ownerKey).sig, commandSig, 'the owner key makes the signature shown (Ed25519 is deterministic)')

  const secret = /The device secret `([^`]+)`/.exec(signing)?.[1]
  t.ok(secret, 'the doc names the device secret')
  const device = deviceKeys(secret ?? '')
  t.equal(publicKeyPem(device.publicKey).trim(), devicePem, "the device's public key derived from that secret")
  const receipt = JSON.parse(fenced(section('Result'), 'json')[0] ?? '{}') as { sig: string }
  const { sig: receiptSig, ...unsignedReceipt } = receipt
  t.equal(canonical(unsignedReceipt), receiptBytes, "the receipt's canonical bytes")
  t.equal(signPayload(unsignedReceipt, device.privateKey).sig, receiptSig, 'the device key makes the signature shown')
  t.ok(verifyPayload(receipt, createPublicKey(devicePem)), 'and the public key in the doc verifies it')
  t.end()
})
