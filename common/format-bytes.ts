/**
 * "1.5 GB"-style sizes for people (binary units: 5 GiB is "5.0 GB"): the cloud's quota refusals, the CLI's tables and
 * progress lines, and the web console, which loads this module's build as `/js/format-bytes.js` (cli/web/assets.ts), so
 * a quota reads the same everywhere. A module of its own, so a console command that shows progress (`console migrate`,
 * M2) does not load the cloud's accounts and SQLite; it imports nothing, so a browser can load it as it is.
 */
export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 ? v : v.toFixed(v >= 10 ? 0 : 1)} ${units[u]}`
}
