/**
 * `fakephone agent` on a terminal: a few plain lines for the person who started it -- which phone, which broker, its
 * data directory, its push channel (on or off), cloud transfers and owner key (F2), then whether the data channel
 * connected and, if not, why -- a broker that refuses the device (F1, X1: removed, or a wrong secret) said once with what
 * to do, not per retry (a device removed while it runs at once: the push channel's refusal says why the broker closed
 * the data channel), and said again when it takes the device back -- on stderr beside the human-readable log. Off a
 * terminal (systemd's journal, a pipe) none of this is said: the JSON log lines are the record there, as they were.
 */
import type { Agent } from '../agent/agent.js'
import { channelUrls, NO_PUSH_WHY, type AgentConfig } from '../agent/config.js'
import { NOT_MQTT_WHY, type LinkState } from '../common/mqtt.js'
import { forTerminal, linesForTerminal } from '../common/terminal-text.js'
import type { Io } from './io.js'
import { dataChannelRefused } from './render.js'

/** What the phone is and where it goes, said before it starts. */
export function startUpLines(c: AgentConfig): string {
  const { pushUrl, cloudUrl } = channelUrls(c)
  const push = pushUrl === undefined ? `off: ${NO_PUSH_WHY}` : `on, ${pushUrl}`
  const cloud = cloudUrl ?? 'none: no sync, backup or drive (--cloud http://HOST:PORT, or a push channel)'
  const owner =
    c.ownerKey === undefined
      ? 'none: every remote command is refused (--owner-key ACCOUNT.pub, or "ownerKey" in the config file)'
      : c.ownerKey
  return linesForTerminal(
    [
      `Phone ${c.id}, data directory ${c.dataDir}`,
      `  broker        ${c.broker}`,
      `  push channel  ${push}`,
      `  cloud         ${cloud}`,
      `  owner key     ${owner}`,
      '',
    ].join('\n'),
  )
}

/** The data channel's state as the person is told it: one line per change, none for a retry like the one before. */
function connectionLine(agent: Agent, c: AgentConfig, state: LinkState, said: string | null): { key: string; line: string } | null {
  if (state === 'connected')
    return { key: state, line: `Connected to the broker ${c.broker}${said === 'refused' ? ': it accepts this device again' : ''}` }
  if (state === 'off')
    return {
      key: state,
      line: `Not connected: the cloud service is off on this phone (fakephone phone --data ${c.dataDir} cloud-service on)`,
    }
  if (state !== 'waiting') return null
  const { refused, notMqtt, failure } = agent.dataChannelFailure
  // F1: a broker that removes the device closes its data channel without a word, the push channel with why: said at once.
  if (refused || (failure === null && agent.framework.pushRefused))
    return { key: 'refused', line: `Not connected: ${dataChannelRefused(c.id)}` }
  if (notMqtt)
    return { key: 'not-mqtt', line: `Not connected: ${c.broker} does not answer in MQTT (${failure as string}): ${NOT_MQTT_WHY}` }
  const why = failure === null ? 'the broker closed the connection' : `cannot reach the broker (${failure})`
  return { key: 'unreachable', line: `Not connected: ${why}; is it running at ${c.broker}? It keeps retrying` }
}

/** Says the data channel's state now and each change of it until the returned function is called. */
export function sayConnection(io: Io, agent: Agent, c: AgentConfig): () => void {
  let said: string | null = null
  const say = (state: LinkState): void => {
    const next = connectionLine(agent, c, state, said)
    if (next === null || next.key === said) return
    said = next.key
    io.err(`${forTerminal(next.line)}\n`)
  }
  // The push channel's refusal may reach the phone after the data channel closed: the line is looked at again then.
  const pushChanged = (): void => say(agent.dataChannelState)
  say(agent.dataChannelState)
  agent.on('channel', say)
  agent.framework.on('push', pushChanged)
  return () => {
    agent.off('channel', say)
    agent.framework.off('push', pushChanged)
  }
}
