/**
 * Reading the credentials of an HTTP request's `Authorization` header, the
 * one place every API the broker serves (console, framework, cloud, SDK)
 * takes them from: a bearer token (the console token or a drive SDK token)
 * or HTTP Basic (a device's id and secret).
 */

/** The token of `Authorization: Bearer TOKEN`, or undefined for any other header (or none). */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer (.+)$/.exec(header ?? '')?.[1]
}

/** The user and password of `Authorization: Basic base64(user:password)`; undefined for any other header or one without a user. */
export function basicCredentials(header: string | undefined): { user: string; password: string; text: string } | undefined {
  const encoded = /^Basic (.+)$/.exec(header ?? '')?.[1]
  if (encoded === undefined) return undefined
  const text = Buffer.from(encoded, 'base64').toString()
  const colon = text.indexOf(':')
  if (colon <= 0) return undefined
  return { user: text.slice(0, colon), password: text.slice(colon + 1), text }
}
