/**
 * Each top-level command's one-line description, and whether it takes options of its own: what `fakephone --help` lists
 * (cli/main.ts), which it shows without loading any command's module (the broker's, the agent's and the console's code
 * each take a good part of a second of CPU to load), and what the command's own help says, as its module takes the
 * description from here: the two cannot differ.
 */
export interface CommandSummary {
  description: string
  /** The command has options of its own: the top-level help lists it as `NAME [options]`. */
  options: boolean
}

export const COMMAND_SUMMARIES = {
  broker: { description: 'run the cloud: MQTT over TCP and WebSocket, the console API and the embedded database', options: true },
  device: { description: 'register, list and remove devices (works on the data directory, running broker or not)', options: false },
  agent: { description: 'run one fake phone', options: true },
  phone: {
    description:
      "act as the phone's user on a running agent: flip switches, change network, show status, use its photos, contacts, notes " +
      'and recordings',
    options: true,
  },
  console: { description: "the owner's console: devices, their positions and history", options: true },
  demo: { description: 'broker + one fake phone + live console, all in this process (what `npm start` runs)', options: true },
  config: { description: 'check config files and list their environment overrides', options: false },
  install: {
    description: 'put the systemd units, the broker user (sysusers.d) and starting configs in place; configs that exist are kept',
    options: true,
  },
  bag: { description: 'BagIt bags (RFC 8493), as `console export` writes them', options: true },
  fleet: {
    description: 'a fleet of fake phones: provision them, run a scenario (over worker processes, or hosts by shard), report',
    options: false,
  },
} as const satisfies Record<string, CommandSummary>
