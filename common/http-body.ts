/**
 * Reading an HTTP message's body with a size limit: every JSON API the
 * broker serves (console, framework, cloud), and the answers the agent's cloud
 * client and the console client read. Each decodes and answers in
 * its own way; this only gathers the bytes.
 */
import type { IncomingMessage } from 'node:http'

/** The body's bytes, or null once they grow past `maxBytes` (the rest is not read). */
export async function readBodyBytes(req: IncomingMessage, maxBytes: number): Promise<Buffer<ArrayBuffer> | null> {
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

/** The whole body, however large: an answer its reader asked for. Rejects when it is cut short. */
export async function readWholeBody(msg: IncomingMessage): Promise<Buffer<ArrayBuffer>> {
  return (await readBodyBytes(msg, Infinity)) as Buffer<ArrayBuffer>
}
