/**
 * Each console subcommand that a group module adds (cli/console-command.ts CONSOLE_GROUPS), as `fakephone console --help`
 * lists it: its term (name, `[options]`, arguments) and description, in the help's order. The console's help shows these
 * without loading any group's module (~60 modules: the remote commands', the web console's, the transfers'...), as the
 * top-level help shows command-summaries.ts. test/cli/console-command.test.ts holds them to the modules' own: a change
 * to a subcommand there fails it until it is made here too.
 */
export const CONSOLE_SUMMARIES: readonly (readonly [term: string, description: string])[] = [
  ['locate [options] <id>', 'F2: ask the phone for a fresh fix'],
  ['ring [options] <id>', 'F2: make the phone ring'],
  ['lock [options] <id>', 'F2: lock the screen, showing a message and a number to call'],
  ['lost-mode [options] <id> <on|off>', 'F2/F4: lost mode (locked, frequent heartbeats); off starts the 72 h guard'],
  ['wipe [options] <id>', "F2: erase the phone's data (asks for confirmation)"],
  ['commands [options] <id>', "a device's remote commands with their state and receipt, newest first"],
  ['cancel <command-id>', 'cancel a command the device has not received yet'],
  ['web [options]', "the owner's console in a web browser: live map, commands, the cloud's data and time (Ctrl-C stops it)"],
  [
    'web-link <url>',
    'a new one-time sign-in link for the web console at URL (as `console web` or the demo printed it), made from the console token',
  ],
  ['device <id>', "one device's data channel and push channel, its notifications and the behaviour logs the cloud received"],
  ['notify [options] <id>', 'queue a notification for a device: it goes out over the push channel now, or when the device is back'],
  ['notifications [options] <id>', "a device's newest notifications: queued, delivered (and how late) or expired"],
  ['logs [options] <id>', 'the behaviour-log events the cloud received from a device, newest first'],
  ['accounts', 'every account: membership, quota use, cloud service, last activity and when a year without any freezes it'],
  ['account [options] <id>', 'one account and what the cloud rules did to its data (opening it counts as a console sign-in)'],
  ['membership [options] <id> <tier>', 'premium: a bigger quota and a 180-day recycle bin (for --days, or until ended); free: end it now'],
  ['clock', "the cloud's time (see `clock advance` for simulated time)"],
  ['drive', "an account's cloud drive: files, share links and SDK tokens for other apps (D1)"],
  ['items [options] <account>', 'what the cloud keeps of an account: counts and bytes per category, and each item'],
  [
    'delete <account> <category> [id]',
    'delete a cloud item (CATEGORY ID, or CATEGORY/ID as `items` lists it): it goes to recently deleted',
  ],
  ['bin <account>', 'recently deleted: each entry with the days it has left'],
  ['restore <account> <category> [id]', 'bring an entry back from recently deleted; the phones pull it again'],
  ['delete-forever <account> <category> [id]', 'delete an entry from recently deleted: gone for good, nothing brings it back'],
  ['backups <account>', "an account's backups: state (active / read-only / cleaning) with its dates, the backups, recent plans"],
  ['backup', 'one backup: show its manifest, delete it, or delete all of a device'],
  ['service', "the cloud service's retirement (M1): its plan and phases"],
  [
    'migrate [options] <account>',
    'M2: copy the account to another fakephone cloud and verify every item there (a job: run again to resume)',
  ],
  [
    'export [options] <account>',
    "M3: the account's whole cloud as a BagIt bag: items with sidecars, drive, backups, history, commands, notifications",
  ],
  ['import [options] <bag>', 'M3: a bag from `console export` into an account of this cloud: validated first, nothing imported twice'],
]
