/** `fakephone config ...`: check a daemon's config file before systemd starts it, list the environment overrides. */
import { Command, Option } from 'commander'
import { COMMAND_SUMMARIES } from './command-summaries.js'
import type { z } from 'zod'
import { AGENT_CONFIG, type AgentConfig } from '../agent/config.js'
import { BROKER_CONFIG, type BrokerConfig } from '../broker/config.js'
import { agentFiles, brokerFiles } from './config-files.js'
import { sayConfigWarnings } from './config-warnings.js'
import { configKind, type ConfigKind as Kind } from './config-kind.js'
import { ConfigError, envName, loadConfigWithOrigins, readConfigFile, settings, type ConfigSpec } from '../common/config.js'
import type { Io } from './io.js'
import { table } from './render.js'
import { forTerminal } from '../common/terminal-text.js'

const SPECS: Record<Kind, ConfigSpec<z.ZodObject>> = { broker: BROKER_CONFIG, agent: AGENT_CONFIG }

const kindOption = (what: string): Option => new Option('--kind <kind>', what).choices(['broker', 'agent'])

export function configCommand(io: Io): Command {
  const cmd = new Command('config').description(COMMAND_SUMMARIES.config.description)
  cmd
    .command('check <file>')
    .description(
      'check a config file with the FAKEPHONE_* environment applied as the daemon applies it: every problem with its key (exit ' +
        '1), or that it is valid',
    )
    .addOption(
      kindOption(
        'broker or agent (default: from the file name when it holds "broker" or "agent", else from its keys: ' +
          'one only an agent config has, like id or location, or only a broker config has, like mqttPort)',
      ),
    )
    .action(async (file: string, o: { kind?: Kind }) => {
      // Read once: its keys may tell its kind, its values are checked (a pipe, `<(…)`, can be read only once).
      const read = await readConfigFile(file)
      const kind = configKind(read, o.kind, SPECS)
      // The environment the daemon would see overrides the file here exactly as it does there.
      const { config, origin, notes } = await loadConfigWithOrigins(SPECS[kind], { file: read, env: io.env })
      // Valid, but most likely not meant (`"interval": 30` is 30 ms): said, and the file is still valid.
      sayConfigWarnings(io, notes)
      // Then every file it names, as the daemon will use it: a missing owner key or secret is found now, not at the start.
      const found =
        kind === 'agent' ? await agentFiles(config as AgentConfig, file, io.env, origin) : brokerFiles(config as BrokerConfig, origin)
      for (const note of found.notes) io.err(`note: ${forTerminal(note)}\n`)
      if (found.problems.length > 0) throw new ConfigError(kind, found.problems)
      const prefix = envName(kind, []) + '_'
      const overrides = Object.keys(io.env).filter((name) => name.startsWith(prefix) && io.env[name] !== undefined)
      io.out(`${file}: a valid ${kind} config${overrides.length ? ` with ${overrides.sort().join(', ')} from the environment` : ''}\n`)
    })
  cmd
    .command('env')
    .description('the environment variable that overrides each setting')
    .addOption(kindOption('broker or agent').makeOptionMandatory())
    .action((o: { kind: Kind }) => {
      const spec = SPECS[o.kind]
      io.out(
        table(
          ['SETTING', 'VARIABLE'],
          settings(spec.schema).map((s) => [s.path.join('.'), envName(spec.kind, s.path)]),
        ),
      )
    })
  return cmd
}
