/**
 * The known name a mistyped one most likely meant: a config key typed `hots` is `host`. Used where a name the user
 * wrote is refused (common/config.ts: an unknown setting), so the error says what to write instead.
 */

/** Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`, ignoring case. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase()
  const t = b.toLowerCase()
  const width = t.length + 1
  // d[i * width + j]: edits from the first i characters of s to the first j of t.
  const d = new Uint16Array((s.length + 1) * width)
  const at = (i: number, j: number): number => d[i * width + j] as number
  for (let i = 0; i <= s.length; i++) d[i * width] = i
  for (let j = 0; j <= t.length; j++) d[j] = j
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (s[i - 1] === t[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      d[i * width + j] = best
    }
  }
  return at(s.length, t.length)
}

/**
 * The one name of `known` closest to `name`, when it is close enough to be a typo (at most a third of its letters
 * changed, and at least one); undefined when none is, or when two are equally close.
 */
export function similarName(name: string, known: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.floor(name.length / 3))
  let best: string | undefined
  let bestDistance = Infinity
  let tie = false
  for (const candidate of known) {
    const distance = editDistance(name, candidate)
    if (distance < bestDistance) [best, bestDistance, tie] = [candidate, distance, false]
    else if (distance === bestDistance) tie = true
  }
  return bestDistance <= limit && !tie ? best : undefined
}
