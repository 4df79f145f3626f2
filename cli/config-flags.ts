/**
 * The flags layer of a daemon's config: which options were typed on the
 * command line (commander's defaults, shown in --help, are the schema's own
 * and are left to it) and the config key each one sets.
 */
import type { Command } from 'commander'
import type { ConfigSources } from '../common/config.js'

/** A config key, or a key with how the flag's value becomes the setting's. */
export type FlagKey = string | { key: string; value: (flag: unknown) => unknown }

export function givenFlags(cmd: Command, keys: Readonly<Record<string, FlagKey>>): NonNullable<ConfigSources['flags']> {
  const values: Record<string, unknown> = {}
  const names: Record<string, string> = {}
  for (const option of cmd.options) {
    const attribute = option.attributeName()
    const target = keys[attribute]
    if (target === undefined) continue
    const key = typeof target === 'string' ? target : target.key
    const given = cmd.getOptionValueSource(attribute) === 'cli'
    // Several flags may set one key (--gpx, --fixed, --gpsd): name the one given.
    if (given || !(key in names)) names[key] = option.long as string
    if (!given) continue
    const value: unknown = cmd.getOptionValue(attribute)
    values[key] = typeof target === 'string' ? value : target.value(value)
  }
  return { values, names }
}
