/** The README and docs/ link only files of this repository, and the behaviour IDs they use are described in docs/BEHAVIOURS.md. */
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join, relative, resolve, sep } from 'node:path'

const root = fileURLToPath(new URL('../../', import.meta.url))
const docs = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
]

t.test('every relative link in the README and docs/ points at a file inside the repository', (t) => {
  for (const doc of docs) {
    const text = readFileSync(join(root, doc), 'utf8')
    for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target as string)) continue
      const file = resolve(dirname(join(root, doc)), target as string)
      const inside = !relative(root, file).startsWith('..') && !relative(root, file).startsWith(sep)
      t.ok(inside && existsSync(file), `${doc} links ${target as string}, a file of the repository`)
    }
  }
  t.end()
})

t.test('docs/BEHAVIOURS.md describes every ID the README table lists, F1 to M3', (t) => {
  const behaviours = readFileSync(join(root, 'docs', 'BEHAVIOURS.md'), 'utf8')
  const ids = [
    'F1',
    'F2',
    'F3',
    'F4',
    'S1',
    'S2',
    'S3',
    'S4',
    'R1',
    'R2',
    'R3',
    'B1',
    'B2',
    'B3',
    'B4',
    'D1',
    'D2',
    'D3',
    'D4',
    'D5',
    'X1',
    'X2',
    'X3',
    'A1',
    'A2',
    'A3',
    'M1',
    'M2',
    'M3',
  ]
  for (const id of ids) t.match(behaviours, new RegExp(`\\n- \\*\\*${id}\\b`), id)
  t.match(readFileSync(join(root, 'README.md'), 'utf8'), /\]\(docs\/BEHAVIOURS\.md\)/)
  t.end()
})
