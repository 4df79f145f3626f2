/**
 * Reading an HTTP request's body with a size limit, for every JSON API the
 * broker serves (console, framework, cloud). Each API decodes and answers in
 * its own way; this only gathers the bytes.
 */
import type { IncomingMessage } from 'node:http'

/** The body's bytes, or null once they grow past `maxBytes` (the rest is not read). */
export async function readBodyBytes(req: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBytes) return null
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/** The body as UTF-8 text, or null once it grows past `maxBytes` (the rest is not read). */
export async function readBodyText(req: IncomingMessage, maxBytes: number): Promise<string | null> {
  return (await readBodyBytes(req, maxBytes))?.toString('utf8') ?? null
}
