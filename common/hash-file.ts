/**
 * A file's digests, read once: the bag validator's payload and tag checks (M3, common/bagit/validate), the bag writer
 * checking a file an earlier run left (common/bagit/write), and the cloud's blob store checking an upload against its
 * SHA-256 (S3/D1/M2, broker/cloud/blob-store). One reader for all of them, outside the bag code, so the broker does not
 * depend on it.
 */
import { createHash, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'

/** The file's digest by each of `algorithms` (hex), read once; `onBytes` hears each chunk's length. */
export async function hashFile(
  path: string,
  algorithms: readonly string[],
  onBytes: (n: number) => void = () => undefined,
): Promise<Map<string, string>> {
  const hashes = new Map<string, Hash>(algorithms.map((a) => [a, createHash(a)]))
  for await (const chunk of createReadStream(path)) {
    for (const h of hashes.values()) h.update(chunk as Buffer)
    onBytes((chunk as Buffer).length)
  }
  return new Map([...hashes].map(([a, h]) => [a, h.digest('hex')]))
}

/** The file's SHA-256, hex. */
export const sha256File = async (path: string): Promise<string> => (await hashFile(path, ['sha256'])).get('sha256') as string
