/** `fakephone install`: the systemd units, the broker's user and starting configs, under a prefix. */
import { Command } from 'commander'
import { COMMAND_SUMMARIES } from './command-summaries.js'
import { isAbsolute, join, resolve } from 'node:path'
import { parseLocation } from '../agent/config.js'
import { DeviceIdSchema } from '../common/contract.js'
import { UserError, type Io } from './io.js'
import { defaultBin, execLine, install } from './install.js'
import { quoted } from '../common/terminal-text.js'

export function installCommand(io: Io): Command {
  return new Command('install')
    .description(COMMAND_SUMMARIES.install.description)
    .option('--prefix <dir>', 'root to install under', '/')
    .option('--bin <command>', 'the fakephone command for ExecStart= (default: this node running this installation)')
    .option(
      '--agent <id>',
      'also write /etc/fakephone/agent-ID.json for this device (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--location <spec>', 'location of those agents: route, gpx:FILE, fixed:LAT,LON, gpsd or gpsd:HOST:PORT', 'route')
    .action(async (o: { prefix: string; bin?: string; agent: string[]; location: string }) => {
      const bin = o.bin ? o.bin.trim().split(/\s+/) : defaultBin()
      if (!isAbsolute(bin[0] as string))
        throw new UserError(`--bin must start with an absolute path (systemd does no PATH lookup): ${quoted(String(o.bin))}`)
      for (const id of o.agent) {
        const bad = DeviceIdSchema.safeParse(id).error
        if (bad) throw new UserError(`invalid device id ${quoted(id)}: ${bad.issues[0]?.message}`)
      }
      let spec
      try {
        spec = parseLocation(o.location)
      } catch (err) {
        throw new UserError(`--location: ${(err as Error).message}`)
      }
      // The agent runs in its state directory, so a relative GPX path is taken from here, where the operator means it.
      const gpx = spec.kind === 'gpx' ? resolve(spec.file) : undefined
      const location = gpx === undefined ? o.location : `gpx:${gpx}`
      const fix = (w: string): string =>
        w === gpx
          ? 'put the GPX file elsewhere (under /etc/fakephone or /opt)'
          : 'install fakephone elsewhere (npm install -g, or a checkout under /opt)'
      const hidden = [...bin, gpx].find((w) => w !== undefined && /^\/(home|root|run\/user)\//.test(w))
      if (hidden)
        io.err(`warning: ${hidden} is under /home, /root or /run/user, which ProtectHome=yes hides from the services: ${fix(hidden)}\n`)
      const temporary = [...bin, gpx].find((w) => w !== undefined && /^\/(tmp|var\/tmp)\//.test(w))
      if (temporary)
        io.err(
          `warning: ${temporary} is under /tmp or /var/tmp, which PrivateTmp=yes replaces with an empty folder for the services: ` +
            `${fix(temporary)}\n`,
        )
      const files = await install({ prefix: o.prefix, bin, agents: o.agent, location })
      for (const f of files) io.out(`${f.action === 'wrote' ? 'wrote' : 'kept (exists)'}  ${f.path}\n`)
      const etc = join(o.prefix, 'etc', 'fakephone')
      io.out(
        [
          '',
          `ExecStart= runs: ${execLine(bin)}`,
          'Next (as root):',
          '  systemd-sysusers && systemctl daemon-reload',
          '  systemctl enable --now fakephone-broker',
          ...o.agent.map(
            (id) =>
              `  # put the device secret in ${join(etc, `agent-${id}.secret`)} (mode 0600) and the owner's public key as\n` +
              `  # "ownerKey" in ${join(etc, `agent-${id}.json`)} (without it the phone refuses every remote command), then:\n` +
              `  systemctl enable --now fakephone-agent@${id}`,
          ),
          '',
        ].join('\n'),
      )
    })
}
