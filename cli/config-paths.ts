/**
 * A relative path in a config file is read from the folder the daemon starts in, not the config file's. A hobbyist
 * keeps the config, the device secret and the owner key in one folder and starts the agent from another, and was told
 * only "no such file" of a file they could see: `config check` and the agent's start add where it was looked for and
 * the path to give.
 */
import { existsSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'

/** When `path` (as a config file named `configFile` gives it) is missing but is there beside that file: what to say. */
export function besideConfig(path: string, configFile: string): string {
  const beside = resolve(dirname(configFile), path)
  if (isAbsolute(path) || beside === resolve(path) || existsSync(path) || !existsSync(beside)) return ''
  return `; a relative path is read from the folder the agent starts in (${process.cwd()}), not the config file's: give ${beside}`
}
