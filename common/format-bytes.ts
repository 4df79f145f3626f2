/**
 * "1.5 GB"-style sizes for people: the cloud's quota refusals and the CLI's tables and progress lines. A module of its
 * own, so a console command that shows progress (`console migrate`, M2) does not load the cloud's accounts and SQLite.
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
