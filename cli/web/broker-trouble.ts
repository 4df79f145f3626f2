/**
 * Why the web console cannot reach the broker, in words a person can act on -- what the page's banner and its errors
 * say -- with the technical reason kept beside them (the banner's tooltip, the answer's `detail`): "connect
 * ECONNREFUSED 127.0.0.1:8080" becomes "The broker is not answering at 127.0.0.1:8080: is `fakephone broker` running?".
 */

export interface BrokerTrouble {
  /** The page's one-word state beside "live": whether the broker is away or refuses this console. */
  state: 'broker unreachable' | 'token refused'
  /** For a person: what is wrong and what to check. */
  text: string
  /** The reason as Node, MQTT or the broker said it. */
  detail: string
}

/** The broker closed the feed's connection without an error (it stopped, or restarted). */
export function brokerClosed(url: string): BrokerTrouble {
  return {
    state: 'broker unreachable',
    text: `The broker at ${new URL(url).host} closed the connection: was it stopped or restarted?`,
    detail: 'connection closed',
  }
}

/**
 * `err` (a Node socket error, an MQTT refusal, or a 401 from the broker's HTTP API: `{status: 401}`) said for a broker
 * at `url`.
 */
export function brokerTrouble(err: unknown, url: string): BrokerTrouble {
  // What callers catch is an Error (Node's, mqtt.js's) or the console client's {status: 401}: an object, each field looked at.
  const e = err as { code?: unknown; message?: unknown; status?: unknown }
  const detail = String(e.message ?? err)
  const code = typeof e.code === 'string' ? e.code : /\b(E[A-Z]{4,})\b/.exec(detail)?.[1]
  const where = new URL(url)
  const at = where.host
  const text = (t: string): BrokerTrouble => ({ state: 'broker unreachable', text: t, detail })
  if (e.status === 401 || /Not authorized|Bad username or password/.test(detail)) {
    return {
      state: 'token refused',
      detail,
      text:
        "The broker refuses this console's token: it changed since this console started (a new data directory, or the " +
        'token file written anew). Start `fakephone console web` again to use the current one.',
    }
  }
  switch (code) {
    case 'ECONNREFUSED':
      return text(`The broker is not answering at ${at}: is \`fakephone broker\` (or \`fakephone demo\`) running?`)
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return text(`The broker's address ${where.hostname} cannot be found (DNS): check the address this console was given (--api).`)
    case 'ETIMEDOUT':
      return text(`The broker at ${at} does not answer in time: is it overloaded, or is the network in between down?`)
    case 'ECONNRESET':
    case 'EPIPE':
      return text(`The connection to the broker at ${at} was cut: was it stopped or restarted?`)
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return text(`The broker at ${at} cannot be reached over the network: check the address (--api) and the network.`)
  }
  if (/connack timeout/.test(detail)) return text(`The broker at ${at} does not answer in time: is it overloaded?`)
  return text(`The broker at ${at} cannot be reached.`)
}
