/** F2: the owner keys folder the console signs from -- command sequence numbers and the device receipt keys. */
import { createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, sign, verify, type KeyObject } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import {
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { OwnerKeys, deviceKeys, privateKeyFileRefusal, publicKeyPem, readPublicKey } from '../../common/signing.js'
import { tempDir } from '../fixtures/scope.js'

const seqOnDisk = (dir: string, device: string): string => readFileSync(join(dir, 'devices', `${device}.seq`), 'utf8')

t.test('F2 sequence numbers rise past the last issued and the clock, across a restart and two consoles on one folder', (t) => {
  const dir = tempDir(t)
  const first = new OwnerKeys(dir)
  t.equal(first.nextSeq('p', 1000), 1000, 'the first command takes the clock, and makes the devices folder')
  t.equal(first.nextSeq('p', 10), 1001, 'a clock behind the last number: one above it')
  t.equal(seqOnDisk(dir, 'p'), '1001')
  const restarted = new OwnerKeys(dir)
  t.equal(restarted.nextSeq('p', 0), 1002, 'a console started again goes on from the folder')
  t.equal(first.nextSeq('p', 0), 1003, 'a second console sharing the folder: each sees the numbers the other issued')
  t.equal(first.nextSeq('q', 5), 5, 'each device counts on its own')
  t.equal(first.nextSeq('p', 99_999), 99_999, 'a clock ahead wins, and the file grows to its digits')
  t.equal(seqOnDisk(dir, 'p'), '99999')
  t.end()
})

t.test('F2 a sequence file holding more than a number is rewritten to the number alone', (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'devices'))
  writeFileSync(join(dir, 'devices', 'p.seq'), '  41\n\n\n     ')
  const keys = new OwnerKeys(dir)
  t.equal(keys.nextSeq('p', 0), 42)
  t.equal(seqOnDisk(dir, 'p'), '42', 'cut to the new number: nothing of the old text is left after it')
  t.equal(keys.nextSeq('p', 0), 43)
  writeFileSync(join(dir, 'devices', 'p.seq'), '')
  t.equal(keys.nextSeq('p', 7), 7, 'an empty file counts as nothing issued')
  t.end()
})

t.test('F2 a sequence file that is too large, not a file or not a number is refused naming it, and left as it was', (t) => {
  const dir = tempDir(t)
  const keys = new OwnerKeys(dir)
  keys.ensureFolder()
  const file = (device: string): string => join(dir, 'devices', `${device}.seq`)
  // 41 after a megabyte of spaces: read whole before, and counted on from 41.
  const padded = ' '.repeat(1 << 20) + '41'
  writeFileSync(file('big'), padded)
  t.throws(() => keys.nextSeq('big', 0), {
    code: 'NOT_A_SMALL_FILE',
    message: `${file('big')} is larger than 64 bytes, too large for what it holds`,
  })
  t.equal(readFileSync(file('big'), 'utf8'), padded, 'not rewritten')
  symlinkSync('/dev/zero', file('zero'))
  t.throws(() => keys.nextSeq('zero', 0), {
    code: 'NOT_A_SMALL_FILE',
    message: `${file('zero')} is a character device, not a regular file`,
  })
  execFileSync('mkfifo', [file('fifo')])
  t.throws(() => keys.nextSeq('fifo', 0), { code: 'NOT_A_SMALL_FILE', message: `${file('fifo')} is a FIFO, not a regular file` })
  const notANumber = {
    code: 'BAD_SEQ_FILE',
    message:
      `${file('text')} holds no command sequence number (a whole number): remove it, and the next command to the device counts ` +
      `from the clock`,
  }
  for (const text of ['forty-one', '41 42', '-5', '4.5', '1e3', '99999999999999999999']) {
    writeFileSync(file('text'), text)
    t.throws(() => keys.nextSeq('text', 1000), notANumber, `${text}: refused, not counted on from NaN or a guess`)
    t.equal(readFileSync(file('text'), 'utf8'), text, `${text}: left as it was`)
  }
  rmSync(file('text'))
  t.equal(keys.nextSeq('text', 1000), 1000, 'removed, as the refusal says: the next number comes from the clock')
  t.end()
})

const isRoot = process.getuid?.() === 0

t.test(
  "F2 under sudo: what the console makes in another user's keys folder is that user's, so their own console can write it",
  { skip: isRoot ? false : 'needs root: only root can make a file that belongs to another user (the decision is tested for any user)' },
  (t) => {
    const home = tempDir(t)
    const user = { uid: 4321, gid: 4322 }
    chownSync(home, user.uid, user.gid)
    const dir = join(home, 'keys')
    const keys = new OwnerKeys(dir)
    keys.ensureSigningKey('alice')
    keys.rememberDevice('p', 'secret')
    t.equal(keys.nextSeq('p', 7), 7)
    // A .seq file an earlier sudo run left root's is given back at its next command.
    writeFileSync(join(dir, 'devices', 'q.seq'), '41')
    chownSync(join(dir, 'devices', 'q.seq'), 0, 0)
    t.equal(keys.nextSeq('q', 0), 42)
    for (const made of ['', 'alice.key', 'alice.pub', 'devices', 'devices/p.pub', 'devices/p.seq', 'devices/q.seq']) {
      const stats = statSync(join(dir, made))
      t.same({ uid: stats.uid, gid: stats.gid }, user, `${made || 'the keys folder'}: the folder owner's`)
    }
    t.equal(statSync(join(dir, 'alice.key')).mode & 0o777, 0o600, 'the private key still 0600')
    // A link the folder's owner put where a file is written is not followed: root would write and give away its target.
    const target = join(tempDir(t), 'target')
    writeFileSync(target, '5')
    symlinkSync(target, join(dir, 'devices', 'r.seq'))
    t.throws(() => keys.nextSeq('r', 0), { code: 'ELOOP' })
    symlinkSync(target, join(dir, 'devices', 'r.pub'))
    t.throws(() => keys.rememberDevice('r', 'secret'), { code: 'ELOOP' })
    t.equal(readFileSync(target, 'utf8'), '5', 'the target is not written')
    t.equal(statSync(target).uid, 0, "and still root's")
    // Root's own folder: nothing changes hands.
    const own = new OwnerKeys(tempDir(t))
    own.nextSeq('p', 1)
    t.equal(lstatSync(join(own.dir, 'devices', 'p.seq')).uid, 0)
    t.end()
  },
)

t.test("F2 a console told it is root, on a folder of its own user: what it makes is that user's, and still works (any user)", (t) => {
  // As root this is root's own folder (nothing given); as another user the chown is to itself, which is allowed.
  const dir = tempDir(t)
  const keys = new OwnerKeys(join(dir, 'keys'), 0)
  keys.ensureSigningKey('alice')
  keys.rememberDevice('p', 'secret')
  t.equal(keys.nextSeq('p', 3), 3)
  t.equal(keys.nextSeq('p', 0), 4)
  const owner = statSync(dir).uid
  for (const made of ['keys', 'keys/alice.key', 'keys/devices/p.pub', 'keys/devices/p.seq'])
    t.equal(statSync(join(dir, made)).uid, owner, made)
  // Told it is not root: nothing is given to anyone, whatever runs it.
  const notRoot = new OwnerKeys(join(dir, 'other'), 4321)
  t.equal(notRoot.nextSeq('p', 5), 5)
  t.equal(statSync(join(dir, 'other', 'devices', 'p.seq')).uid, process.getuid?.(), "the process's own")
  t.end()
})

t.test('F2 a keys folder that is not a folder is an error when a number is asked for', (t) => {
  const file = join(tempDir(t), 'not-a-folder')
  writeFileSync(file, '')
  t.throws(() => new OwnerKeys(file).nextSeq('p', 0), { code: 'ENOTDIR' })
  t.end()
})

t.test('F2 receipt keys: parsed once, and a device provisioned again is checked with its new key', (t) => {
  const dir = tempDir(t)
  const keys = new OwnerKeys(dir)
  t.equal(keys.deviceKey('p'), undefined, 'a device this folder did not provision has no key')
  keys.rememberDevice('p', 'first-secret')
  const key = keys.deviceKey('p')
  t.equal(key?.export({ type: 'spki', format: 'pem' }).toString(), publicKeyPem(deviceKeys('first-secret').publicKey))
  t.equal(keys.deviceKey('p'), key, 'the same file text: the key parsed before, not parsed again')
  // Another console sharing the folder re-provisions the device: the file changes under this one.
  new OwnerKeys(dir).rememberDevice('p', 'second-secret')
  const rotated = keys.deviceKey('p')
  t.equal(rotated?.export({ type: 'spki', format: 'pem' }).toString(), publicKeyPem(deviceKeys('second-secret').publicKey))
  t.end()
})

t.test('F2 receipt keys: a key file removed means not provisioned here; one that cannot be read is an error', (t) => {
  const dir = tempDir(t)
  const keys = new OwnerKeys(dir)
  keys.rememberDevice('p', 'secret')
  t.ok(keys.deviceKey('p'))
  rmSync(join(dir, 'devices', 'p.pub'))
  t.equal(keys.deviceKey('p'), undefined, 'its key file gone: no key, not the one parsed before')
  mkdirSync(join(dir, 'devices', 'q.pub'))
  t.throws(() => keys.deviceKey('q'), {
    code: 'NOT_A_SMALL_FILE',
    message: `${join(dir, 'devices', 'q.pub')} is a directory, not a regular file`,
  })
  t.end()
})

t.test('F2 an owner key file that is a link to /dev/zero or a FIFO is refused naming it, never read for ever', (t) => {
  const dir = tempDir(t)
  const keys = new OwnerKeys(dir)
  keys.ensureFolder()
  symlinkSync('/dev/zero', join(dir, 'alice.key'))
  execFileSync('mkfifo', [join(dir, 'bob.key')])
  symlinkSync('/dev/zero', join(dir, 'devices', 'p.pub'))
  execFileSync('mkfifo', [join(dir, 'devices', 'q.pub')])
  const refused = (file: string, kind: string) => ({
    code: 'NOT_A_SMALL_FILE',
    message: `${join(dir, file)} is ${kind}, not a regular file`,
  })
  t.throws(() => keys.existingSigningKey('alice'), refused('alice.key', 'a character device'), "the owner's private key")
  t.throws(() => keys.existingSigningKey('bob'), refused('bob.key', 'a FIFO'))
  t.throws(() => keys.deviceKey('p'), refused('devices/p.pub', 'a character device'), "a device's receipt key")
  t.throws(() => keys.deviceKey('q'), refused('devices/q.pub', 'a FIFO'))
  // The agent's --owner-key: refused by the reader; the check for a private key given by mistake leaves it to the reader.
  t.throws(() => readPublicKey(join(dir, 'alice.key')), refused('alice.key', 'a character device'))
  t.throws(() => readPublicKey(join(dir, 'bob.key')), refused('bob.key', 'a FIFO'))
  t.equal(privateKeyFileRefusal(join(dir, 'bob.key')), undefined)
  t.end()
})

t.test('F2 the owner signing key: parsed once, and a key file replaced in the folder is the one used', (t) => {
  const dir = tempDir(t)
  const keys = new OwnerKeys(dir)
  t.equal(keys.existingSigningKey('alice'), undefined, 'no key for the account in this folder')
  keys.signingKey('alice')
  const key = keys.existingSigningKey('alice')
  t.ok(key)
  t.equal(keys.existingSigningKey('alice'), key, 'the same file text: the key parsed before, not parsed again')
  const other = new OwnerKeys(tempDir(t))
  other.signingKey('alice')
  writeFileSync(join(dir, 'alice.key'), readFileSync(join(other.dir, 'alice.key')))
  const replaced = keys.existingSigningKey('alice')
  t.not(replaced, key)
  t.equal(
    publicKeyPem(createPublicKey(replaced as KeyObject)),
    readFileSync(join(other.dir, 'alice.pub'), 'utf8'),
    "the replacing file's key",
  )
  t.end()
})

t.test(
  'F2 a device receipt key is the one earlier versions derived: the HKDF seed as PKCS#8, so keys folders made before still check receipts',
  (t) => {
    // The derivation before the JWK import: the seed wrapped in RFC 8410's PKCS#8 prefix and decoded by OpenSSL.
    const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex')
    for (const secret of ['first-secret', 'a'.repeat(64), '\u00e9t\u00e9']) {
      const seed = Buffer.from(hkdfSync('sha256', secret, 'fakephone', 'device receipt key v1', 32))
      const before = createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: 'der', type: 'pkcs8' })
      const { privateKey, publicKey } = deviceKeys(secret)
      t.equal(publicKeyPem(publicKey), publicKeyPem(createPublicKey(before)), `${secret}: the same public key`)
      const receipt = Buffer.from('receipt')
      t.ok(
        verify(null, receipt, createPublicKey(before), sign(null, receipt, privateKey)),
        `${secret}: its signatures check with the key made before`,
      )
    }
    t.not(publicKeyPem(deviceKeys('one').publicKey), publicKeyPem(deviceKeys('two').publicKey), 'each secret its own key')
    t.end()
  },
)

t.test('F2 the owner signing key is made once: ensureSigningKey keeps an existing key, signingKey returns it', (t) => {
  const dir = tempDir(t)
  const keys = new OwnerKeys(dir)
  keys.ensureSigningKey('alice')
  const made = readFileSync(join(dir, 'alice.key'), 'utf8')
  keys.ensureSigningKey('alice')
  t.equal(readFileSync(join(dir, 'alice.key'), 'utf8'), made, 'a second call leaves the key as it was')
  t.equal(publicKeyPem(createPublicKey(keys.signingKey('alice'))), readFileSync(join(dir, 'alice.pub'), 'utf8'), 'the pair on disk')
  t.end()
})

t.test(
  'owner key files: an account named before the rule gets an encoded file inside the folder; its raw-named keys are taken over',
  (t) => {
    const root = tempDir(t)
    const dir = join(root, 'keys')
    const keys = new OwnerKeys(dir)
    keys.ensureSigningKey('alice')
    t.equal(keys.ownerKeyFile('alice'), join(dir, 'alice.pub'), 'a name the rule accepts is the file name, as before')
    // A name that would have reached out of the folder stays inside it.
    keys.ensureSigningKey('../escape')
    t.notOk(existsSync(join(root, 'escape.key')), 'nothing written outside the folder')
    t.equal(keys.ownerKeyFile('../escape'), join(dir, '~%2E%2E%2Fescape.pub'))
    t.ok(keys.existingSigningKey('../escape'), 'and its key is found again')
    // A key made under the raw name before the rule: its devices obey that key, so it is renamed, not made anew.
    const before = new OwnerKeys(join(root, 'old'))
    before.ensureSigningKey('bob')
    writeFileSync(join(root, 'old', 'Bob Smith.key'), readFileSync(join(root, 'old', 'bob.key')))
    writeFileSync(join(root, 'old', 'Bob Smith.pub'), readFileSync(join(root, 'old', 'bob.pub')))
    const pub = readFileSync(join(root, 'old', 'bob.pub'), 'utf8')
    const old = new OwnerKeys(join(root, 'old'))
    t.ok(old.hasSigningKey('Bob Smith'), 'the raw-named key is found')
    old.ensureSigningKey('Bob Smith')
    t.equal(readFileSync(old.ownerKeyFile('Bob Smith'), 'utf8'), pub, 'the same key pair, not a new one')
    t.same(readdirSync(join(root, 'old')).sort(), ['bob.key', 'bob.pub', '~%42ob%20%53mith.key', '~%42ob%20%53mith.pub'])
    t.equal(publicKeyPem(createPublicKey(old.signingKey('Bob Smith'))), pub)
    t.end()
  },
)

t.test('F2 readPublicKey says what to give for a file that is not an Ed25519 public key, in words, not OpenSSL codes', (t) => {
  const dir = tempDir(t)
  const instead = "not an owner's public key: give the Ed25519 public key (PEM) that `fakephone device add` wrote, ACCOUNT.pub"
  const secret = join(dir, 'kitchen-pi.secret')
  writeFileSync(secret, 'CMC6s_FN1rtaOGaS9I06URQb40QdhLI7Pi0eaIi8fo4\n')
  t.throws(
    () => readPublicKey(secret),
    { message: instead },
    'a device secret given by mistake (OpenSSL said "DECODER routines::unsupported")',
  )
  const rsa = join(dir, 'rsa.pub')
  writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }))
  t.throws(() => readPublicKey(rsa), { message: instead }, 'a public key of another kind, which could verify no command')
  t.end()
})

t.test('F2 readPublicKey refuses the owner private key instead of deriving its public half, naming the .pub to give', (t) => {
  const keys = new OwnerKeys(tempDir(t))
  keys.ensureSigningKey('me')
  const pub = keys.ownerKeyFile('me')
  t.equal(publicKeyPem(readPublicKey(pub)), readFileSync(pub, 'utf8'), 'the public key is read')
  const priv = pub.replace(/\.pub$/, '.key')
  t.throws(() => readPublicKey(priv), {
    message: `${priv} is the owner's PRIVATE key, which must stay with the owner's console: give the public key, ${pub}`,
  })
  t.end()
})
