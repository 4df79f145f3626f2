/**
 * BagIt 1.0 (RFC 8493) file paths in manifests (M3): section 2.1.3 says a
 * path is relative to the bag's base directory, uses `/` between segments,
 * and has CR, LF and `%` percent-encoded (`%0D`, `%0A`, `%25`) -- only those
 * three; any other `%XX` stays as it is. A path may not climb out of the bag
 * (`..`) or be absolute (section 4.1 "security considerations").
 */

/** The path as a manifest line writes it. */
export function encodeManifestPath(path: string): string {
  return path.replace(/[%\r\n]/g, (c) => (c === '%' ? '%25' : c === '\r' ? '%0D' : '%0A'))
}

/** The path a manifest line names; only `%0D`, `%0A` and `%25` are decoded (case-insensitive hex). */
export function decodeManifestPath(text: string): string {
  return text.replace(/%(0[dD]|0[aA]|25)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
}

/** Why `path` (already decoded) may not name a file in a bag, or null when it is fine. */
export function unsafePath(path: string): string | null {
  if (path === '') return 'an empty path'
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'an absolute path'
  if (path.includes('\\')) return 'a path with "\\" (BagIt paths use "/")'
  if (path.includes('\u0000')) return 'a path with a NUL character'
  const segments = path.split('/')
  if (segments.some((s) => s === '..')) return 'a path that climbs out of the bag ("..")'
  if (segments.some((s) => s === '' || s === '.')) return 'a path with an empty or "." segment'
  return null
}
