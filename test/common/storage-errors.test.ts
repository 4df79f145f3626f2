/** Which failures are the storage's (held, retried, answered 507) and which are the write's own. */
import t from 'tap'
import { storageFailure } from '../../common/storage-errors.js'

t.test('a full, failing, read-only or locked store is named with its code; anything else is not a storage failure', async (t) => {
  t.equal(storageFailure(Object.assign(new Error('x'), { code: 'ENOSPC' })), 'the disk is full (ENOSPC)')
  t.equal(storageFailure({ code: 'SQLITE_IOERR_WRITE' }), 'the disk failed to read or write the database (SQLITE_IOERR_WRITE)')
  t.equal(storageFailure({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' }), null, "a row's own fault")
  t.equal(storageFailure({ code: 'ENOENT' }), null)
  t.equal(storageFailure({ code: 'constructor' }), null, 'no inherited name passes for a code')
  t.equal(storageFailure(new Error('no code')), null)
  t.equal(storageFailure(null), null)
})
