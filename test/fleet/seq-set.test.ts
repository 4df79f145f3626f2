/** Issue 12: the heartbeat seqs a run tallies, kept as ranges, answer as a Set of the same numbers would. */
import t from 'tap'
import { Rng } from '../../fleet/prng.js'
import { SeqSet } from '../../fleet/seq-set.js'

const sorted = (s: Iterable<number>): number[] => [...s].sort((a, b) => a - b)

t.test('seqs one after another are one range; a gap starts another', (t) => {
  const s = new SeqSet()
  t.equal(s.size, 0)
  t.notOk(s.has(1), 'empty: has nothing')
  for (const seq of [5, 6, 7, 10, 11]) t.equal(s.add(seq), s, 'add returns the set, as Set#add does')
  t.equal(s.size, 5)
  t.same([...s], [5, 6, 7, 10, 11])
  t.ok(s.has(5) && s.has(7) && s.has(10) && s.has(11))
  t.notOk(s.has(4) || s.has(8) || s.has(9) || s.has(12), 'the gaps and both ends outside')
  t.end()
})

t.test('a seq out of order goes in its place and joins the ranges it touches', (t) => {
  const s = new SeqSet()
  for (const seq of [10, 11, 20, 21, 30]) s.add(seq)
  s.add(11) // already there
  s.add(20) // already there, first of a range
  t.equal(s.size, 5, 'a seq already there is not counted twice')
  s.add(5) // before everything, touching nothing
  s.add(9) // joins the range after it (10-11)
  s.add(12) // joins the range before it (9-11)
  s.add(15) // between two ranges, touching neither
  s.add(25) // same
  s.add(19) // joins 20-21 from below
  s.add(13)
  s.add(14) // joins 9-13 and 15: one range
  s.add(29) // joins 30 from below
  s.add(6) // joins 5 from above
  t.same([...s], [5, 6, 9, 10, 11, 12, 13, 14, 15, 19, 20, 21, 25, 29, 30])
  t.equal(s.size, 15)
  t.end()
})

t.test('against a Set: seeded random adds in any order give the same members', (t) => {
  for (let round = 0; round < 20; round++) {
    const rng = Rng.stream('seq-set', round, 'test')
    const s = new SeqSet()
    const want = new Set<number>()
    for (let i = 0; i < 200; i++) {
      // Mostly the next seq (a phone's heartbeats), now and then one from anywhere (a PUBACK after a reconnect).
      const seq = rng.next() < 0.7 ? Math.max(0, ...want) + 1 : Math.floor(rng.next() * 300)
      s.add(seq)
      want.add(seq)
    }
    t.equal(s.size, want.size, `round ${round}: size`)
    t.same([...s], sorted(want), `round ${round}: members, ascending`)
    for (let seq = -1; seq <= 310; seq++) if (s.has(seq) !== want.has(seq)) t.fail(`round ${round}: has(${seq})`)
  }
  t.end()
})
