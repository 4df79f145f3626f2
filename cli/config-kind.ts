/**
 * Which daemon a config file is for, for `fakephone config check`: `--kind`, else the file's name (`broker.json`,
 * `agent-kitchen-pi.json`), else its keys: one only an agent config has (`id`, `broker`, `location`, …) or only a broker
 * config has (`mqttPort`, `httpPort`, …). Keys both have (`dataDir`, `logLevel`) and unknown ones do not count.
 */
import { basename } from 'node:path'
import type { z } from 'zod'
import { configFileKeys, unreadableConfig, type ConfigFile, type ConfigSpec } from '../common/config.js'
import { forTerminal } from '../common/terminal-text.js'
import { UserError } from './io.js'

export type ConfigKind = 'broker' | 'agent'

/** `file`, read once (readConfigFile): its keys here, its values for the check. */
export function configKind(
  file: ConfigFile,
  given: ConfigKind | undefined,
  specs: Record<ConfigKind, ConfigSpec<z.ZodObject>>,
): ConfigKind {
  if (given) return given
  const name = basename(file.path)
  if (name.includes('broker')) return 'broker'
  if (name.includes('agent')) return 'agent'
  const keys = configFileKeys(file)
  if (typeof keys === 'string') throw unreadableConfig('broker or agent', keys)
  const onlyIn = (kind: ConfigKind, other: ConfigKind): string[] =>
    keys.filter((key) => key in specs[kind].schema.shape && !(key in specs[other].schema.shape))
  const agentKeys = onlyIn('agent', 'broker')
  const brokerKeys = onlyIn('broker', 'agent')
  if (agentKeys.length > 0 && brokerKeys.length === 0) return 'agent'
  if (brokerKeys.length > 0 && agentKeys.length === 0) return 'broker'
  const why =
    agentKeys.length > 0
      ? `it has keys of both: ${brokerKeys.map(forTerminal).join(', ')} (broker) and ${agentKeys.map(forTerminal).join(', ')} (agent)`
      : 'it has no key only one of them has (a broker config: mqttPort, httpPort, …; an agent config: id, broker, location, …)'
  throw new UserError(
    `cannot tell whether ${forTerminal(file.path)} is a broker or an agent config: its name holds neither "broker" nor "agent" and ` +
      `${why}; the kinds are broker and agent: add --kind broker or --kind agent`,
  )
}
