/**
 * F2 under sudo (common/folder-owner.ts): what a console run as root makes in another user's keys folder is given to
 * that user. The decision is a pure function, tested here for any user; the files themselves are in
 * test/common/signing.test.ts, where only root can check another user's ownership.
 */
import t from 'tap'
import { chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { folderOwner, ownerToGive } from '../../common/folder-owner.js'
import { tempDir } from '../fixtures/scope.js'

t.test('root in another user folder gives what it makes to that user; any other case keeps its own', (t) => {
  const alice = { uid: 1000, gid: 1000 }
  t.same(ownerToGive(0, alice), alice, 'sudo on alice folder: alice (uid and gid)')
  t.same(ownerToGive(0, { uid: 1000, gid: 0 }), { uid: 1000, gid: 0 }, 'the folder group as it is')
  t.equal(ownerToGive(0, { uid: 0, gid: 0 }), undefined, "root's own folder: nothing to give")
  t.equal(ownerToGive(0, { uid: 0, gid: 1000 }), undefined, "a folder of root's, whatever its group")
  t.equal(ownerToGive(1000, alice), undefined, 'alice herself: her files are hers already')
  t.equal(ownerToGive(1001, alice), undefined, 'another user cannot give a file away')
  t.equal(ownerToGive(undefined, alice), undefined, 'a system without uids')
  t.end()
})

t.test('the folder owner is the folder, or the nearest folder above it while it does not exist', (t) => {
  const dir = tempDir(t)
  const own = statSync(dir)
  t.same(folderOwner(dir), { uid: own.uid, gid: own.gid })
  t.same(folderOwner(join(dir, 'keys', 'not', 'made')), { uid: own.uid, gid: own.gid }, 'a keys folder still to be made')
  writeFileSync(join(dir, 'file'), '')
  t.same(folderOwner(join(dir, 'file', 'keys')), { uid: own.uid, gid: own.gid }, 'a file in the way: the folder above it')
  t.throws(() => folderOwner(join(dir, 'x'.repeat(300), 'keys')), { code: 'ENAMETOOLONG' }, 'any other failure: said')
  if (process.getuid?.() === 0) {
    mkdirSync(join(dir, 'home'))
    chownSync(join(dir, 'home'), 4321, 4322)
    t.same(folderOwner(join(dir, 'home', 'keys')), { uid: 4321, gid: 4322 }, "under a user's home: that user")
  }
  t.end()
})
