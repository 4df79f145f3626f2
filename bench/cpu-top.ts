/**
 * `node dist/bench/cpu-top.js FILE.cpuprofile [N]`: the N functions (default
 * 20) with the most self time in a `node --cpu-prof` profile, as a Markdown
 * table -- the figures the closing note of issue 14 asks for, before and
 * after (`npm run bench -- --only compare --profile DIR`).
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

function topSelfTime(profile: Profile, n: number): { name: string; ms: number; pct: number }[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    const frame = byId.get(id)?.callFrame
    const where = frame?.url
      ? `${frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, '')}:${frame.lineNumber + 1}`
      : ''
    const name = `${frame?.functionName || '(anonymous)'} ${where}`.trim()
    self.set(name, (self.get(name) ?? 0) + dt)
    total += dt
  })
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, pct: (us / total) * 100 }))
}

if (process.argv[1]?.endsWith('cpu-top.js')) {
  const [file, count] = process.argv.slice(2)
  if (!file) {
    process.stderr.write('usage: node dist/bench/cpu-top.js FILE.cpuprofile [N]\n')
    process.exit(2)
  }
  const rows = topSelfTime(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(count ?? 20))
  process.stdout.write('| self time | % | function |\n|---|---|---|\n')
  for (const r of rows) process.stdout.write(`| ${r.ms.toFixed(0)} ms | ${r.pct.toFixed(1)} | \`${r.name}\` |\n`)
}
