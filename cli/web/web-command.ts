/**
 * `fakephone console web [--port N] [--host H] [--open] [--keys DIR] [--tiles URL]`:
 * serves the owner's console to a browser (server.ts) until Ctrl-C, and prints
 * the one-time link that signs a browser in; once it is used, one line says so
 * and how to get another. `--open` hands the link to $BROWSER, or xdg-open.
 * `fakephone console web-link URL`: a new one-time link for the web console at
 * URL, made from the console token (session.ts), for another browser.
 */
import { spawn } from 'node:child_process'
import type { Command } from 'commander'
import { FakephoneError } from '../../common/errors.js'
import { UserError, untilAborted, type Io } from '../io.js'
import { brokerTrouble } from './broker-trouble.js'
import { DEFAULT_KEYS_DIR, port } from '../options.js'
import type { WebConsole } from './server.js'
import { LINK_TTL_MS, mintLoginToken } from './session.js'
import { quoted } from '../../common/terminal-text.js'

interface WebOptions {
  port: number
  host: string
  open?: boolean
  keys: string
  tiles?: string
}

/** Hands `url` to the user's browser; says so when that fails. */
function openBrowser(io: Io, url: string): void {
  const browser = io.env['BROWSER'] ?? 'xdg-open'
  // The command's environment, PATH included, is where the browser is looked for.
  const child = spawn(browser, [url], { stdio: 'ignore', detached: true, env: { ...io.env } })
  child.on('error', (err) => io.err(`could not open a browser with ${browser} (${err.message}): open the link yourself\n`))
  child.unref()
}

/** What `console web` prints: where the page is and the link that signs a browser in. */
function webGuide(web: WebConsole): string {
  return `Web console on ${web.url}\nOpen this link once to sign in (it works one time):\n  ${web.loginUrl}\n`
}

/** The command that makes a new sign-in link for the web console at `url`, with the console options that find the token. */
function webLinkCommand(tokenFlags: string, url: string): string {
  return `fakephone console ${tokenFlags} web-link ${url}`
}

/** What is said once the printed link was used: it is dead now, and how to get another. */
export function linkUsed(tokenFlags: string, url: string): string {
  return `The sign-in link was used (a link works once). For another browser: ${webLinkCommand(tokenFlags, url)}`
}

/**
 * @param tokenFlags the console options that find the console token (`--data DIR` or `--token-file FILE`), for the
 *   `web-link` command the console suggests once its link was used
 * @param tokenRefused what to do when the broker refuses the console token (which file it was read from, the flags)
 */
export function addWebCommand(
  root: Command,
  io: Io,
  connection: () => Promise<{ apiUrl: string; consoleToken: string }>,
  tokenFlags: () => string,
  tokenRefused: () => string,
): void {
  root
    .command('web')
    .description("the owner's console in a web browser: live map, commands, the cloud's data and time (Ctrl-C stops it)")
    .option('--port <port>', 'port on this machine (0: the OS chooses)', port, 0)
    .option('--host <address>', 'address to listen on; beyond loopback, other machines reach it in plain HTTP (it warns)', '127.0.0.1')
    .option('--open', 'open the login link in a browser ($BROWSER, or xdg-open)')
    .option('--keys <dir>', "the owner's keys folder: commands are signed with it in this process", DEFAULT_KEYS_DIR)
    .option('--tiles <url>', 'a map tile URL template for when you are online, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png')
    .action(async (o: WebOptions) => {
      // The web server's code (HTTP router, live feed, page assets) and pino load only when this command runs, not for
      // every `console` command.
      const [{ WebConsole }, { logger }] = await Promise.all([import('./server.js'), import('../logger.js')])
      const conn = await connection()
      const web = new WebConsole({
        ...conn,
        keysDir: o.keys,
        log: logger(io, 'warn').child({ module: 'web' }),
        host: o.host,
        port: o.port,
        tiles: o.tiles,
        clock: io.clock,
        onLinkUsed: () => io.out(linkUsed(tokenFlags(), web.url) + '\n'),
      })
      try {
        await web.start()
      } catch (err) {
        // The live feed's refusal of the token (the broker's words) with what to do about it, as the other console
        // commands say it.
        if (err instanceof FakephoneError && err.code === 'ELIVEFEED' && brokerTrouble(err, conn.apiUrl).state === 'token refused')
          throw new UserError(`${err.message}: ${tokenRefused()}`)
        throw err
      }
      io.out(webGuide(web))
      if (o.open) openBrowser(io, web.loginUrl as string)
      await untilAborted(io.signal)
      await web.stop()
    })
}

/** `console web-link URL`: prints a new one-time sign-in link for the web console at URL; `{link, expiresAt}` under --json. */
export function addWebLinkCommand(root: Command, io: Io, consoleToken: () => Promise<string>, json: () => boolean): void {
  root
    .command('web-link <url>')
    .description(
      'a new one-time sign-in link for the web console at URL (as `console web` or the demo printed it), made from the console token',
    )
    .action(async (url: string) => {
      let base: URL
      try {
        base = new URL(url)
      } catch {
        throw new UserError(`${quoted(url)} is not the web console's address: give it as printed, e.g. http://127.0.0.1:41234/`)
      }
      if (base.protocol !== 'http:' && base.protocol !== 'https:')
        throw new UserError(`${quoted(url)} is not the web console's address: give it as printed, e.g. http://127.0.0.1:41234/`)
      const now = io.clock.now()
      const link = new URL(`/login?token=${mintLoginToken(await consoleToken(), now)}`, base)
      // A script (a browser test signing in) reads the link from JSON; the console asked with --json got the words.
      if (json()) return io.out(JSON.stringify({ link: link.href, expiresAt: now + LINK_TTL_MS }) + '\n')
      io.out(`Open this link once to sign in (it works one time, for ${LINK_TTL_MS / 60_000} minutes):\n  ${link.href}\n`)
    })
}
