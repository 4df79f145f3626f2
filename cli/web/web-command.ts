/**
 * `fakephone console web [--port N] [--host H] [--open] [--keys DIR] [--tiles URL]`:
 * serves the owner's console to a browser (server.ts) until Ctrl-C, and prints
 * the one-time link that signs a browser in. `--open` hands the link to
 * $BROWSER, or xdg-open.
 */
import { spawn } from 'node:child_process'
import type { Command } from 'commander'
import { untilAborted, type Io } from '../io.js'
import { logger } from '../logger.js'
import { DEFAULT_KEYS_DIR, port } from '../options.js'
import type { WebConsole } from './server.js'

interface WebOptions {
  port: number
  host: string
  open?: boolean
  keys: string
  tiles?: string
}

/** Hands `url` to the user's browser; says so when that fails. */
export function openBrowser(io: Io, url: string): void {
  const browser = io.env['BROWSER'] ?? 'xdg-open'
  // The command's environment, PATH included, is where the browser is looked for.
  const child = spawn(browser, [url], { stdio: 'ignore', detached: true, env: { ...io.env } })
  child.on('error', (err) => io.err(`could not open a browser with ${browser} (${err.message}): open the link yourself\n`))
  child.unref()
}

/** What `console web` prints: where the page is and the link that signs a browser in. */
export function webGuide(web: WebConsole): string {
  return `Web console on ${web.url}\nOpen this link once to sign in (it works one time):\n  ${web.loginUrl}\n`
}

export function addWebCommand(root: Command, io: Io, connection: () => Promise<{ apiUrl: string; consoleToken: string }>): void {
  root
    .command('web')
    .description("the owner's console in a web browser: live map, commands, the cloud's data and time (Ctrl-C stops it)")
    .option('--port <port>', 'port on this machine (0: the OS chooses)', port, 0)
    .option('--host <address>', 'address to listen on; anything but loopback lets other machines reach it', '127.0.0.1')
    .option('--open', 'open the login link in a browser ($BROWSER, or xdg-open)')
    .option('--keys <dir>', "the owner's keys folder: commands are signed with it in this process", DEFAULT_KEYS_DIR)
    .option('--tiles <url>', 'a map tile URL template for when you are online, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png')
    .action(async (o: WebOptions) => {
      // The web server's code (HTTP router, live feed, page assets) loads only when this command runs, not for every
      // `console` command.
      const { WebConsole } = await import('./server.js')
      const web = new WebConsole({
        ...(await connection()),
        keysDir: o.keys,
        log: logger(io, 'warn').child({ module: 'web' }),
        host: o.host,
        port: o.port,
        tiles: o.tiles,
      })
      await web.start()
      io.out(webGuide(web))
      if (o.open) openBrowser(io, web.loginUrl as string)
      await untilAborted(io.signal)
      await web.stop()
    })
}
