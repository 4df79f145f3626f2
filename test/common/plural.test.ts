/** Counts in words: `1 item`, `2 items`, and the verb that follows. */
import t from 'tap'
import { isAre, plural } from '../../common/plural.js'

t.test('a count of one takes the singular, any other the plural, and the verb agrees', (t) => {
  t.equal(plural(1, 'drive file'), '1 drive file')
  t.equal(plural(0, 'backup'), '0 backups')
  t.equal(plural(2, 'phone'), '2 phones')
  t.equal(`${plural(1, 'backup')} ${isAre(1)} read-only`, '1 backup is read-only')
  t.equal(`${plural(5, 'backup')} ${isAre(5)} read-only`, '5 backups are read-only')
  t.end()
})
