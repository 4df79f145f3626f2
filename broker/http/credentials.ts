/**
 * Reading the credentials of an HTTP request's `Authorization` header, the
 * one place every API the broker serves (console, framework, cloud, SDK)
 * takes them from: a bearer token (the console token or a drive SDK token)
 * or HTTP Basic (a device's id and secret).
 */

/**
 * The credentials after `scheme` in an `Authorization` header, or undefined for another scheme. The scheme is matched
 * without regard to case and may be followed by more than one space (RFC 9110 11.1, 11.4): a client that sends
 * `bearer TOKEN`, as OAuth libraries echoing a lower-case `token_type` do, was refused 401 with the right token.
 */
function credentialsOf(scheme: string, header: string | undefined): string | undefined {
  const [, said, credentials] = /^(\S+) +(\S.*)$/.exec(header ?? '') ?? []
  return said?.toLowerCase() === scheme ? credentials : undefined
}

/** The token of `Authorization: Bearer TOKEN`, or undefined for any other header (or none). */
export function bearerToken(header: string | undefined): string | undefined {
  return credentialsOf('bearer', header)
}

/** The user and password of `Authorization: Basic base64(user:password)`; undefined for any other header or one without a user. */
export function basicCredentials(header: string | undefined): { user: string; password: string; text: string } | undefined {
  const encoded = credentialsOf('basic', header)
  if (encoded === undefined) return undefined
  const text = Buffer.from(encoded, 'base64').toString()
  const colon = text.indexOf(':')
  if (colon <= 0) return undefined
  return { user: text.slice(0, colon), password: text.slice(colon + 1), text }
}
