/**
 * What the broker's and the fleet's Prometheus metrics share: prom-client,
 * loaded when first needed; a registry of one's own (several brokers may run
 * in one process: a test's two clouds) with the process's own metrics in it
 * (prom-client's defaults: CPU, RSS, heap, event-loop lag, open fds); the
 * latency buckets; and counters read at scrape time from plain tallies, so a
 * hot path adds 1 to a number and never builds a label string or hashes one.
 */
import { createRequire } from 'node:module'
import type * as PromClient from 'prom-client'

const require = createRequire(import.meta.url)

/** prom-client, loaded when a fleet run or a broker first needs it: a seventh of a second of CPU that every CLI start-up paid. */
export function promClient(): typeof PromClient {
  return require('prom-client') as typeof PromClient
}

/**
 * Latency buckets from 100 µs to 2 min: a heartbeat's PUBACK over loopback takes well under a millisecond (p50 0.6 ms in
 * a 150-phone run, where a first bucket of 1 ms held 86 % of them), and a notification or command that waited for its
 * phone to come back from an outage takes as long as the outage (`for: 45s` in docs/SCENARIOS.md).
 */
export const SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

/** A registry of its own, with the process's metrics (process_*, nodejs_*: prom-client's default metrics) in it. */
export function processRegistry(): PromClient.Registry {
  const prom = promClient()
  const registry = new prom.Registry()
  prom.collectDefaultMetrics({ register: registry })
  return registry
}

/** A counter's labels and value, as a tally gives them to tallyCounter. */
export type Tallied = readonly [labels: Readonly<Record<string, string>>, n: number]

/**
 * A counter whose values are read at each scrape from `read()`: one number, or one per set of labels (`labelNames`).
 * The tally is the code's own (`counters.x++`): nothing on the counted path touches prom-client.
 */
export function tallyCounter(
  registry: PromClient.Registry,
  name: string,
  help: string,
  read: () => number | Iterable<Tallied>,
  labelNames: readonly string[] = [],
): PromClient.Counter {
  return new (promClient().Counter)({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      const tally = read()
      this.reset()
      if (typeof tally === 'number') this.inc(tally)
      else for (const [labels, n] of tally) this.inc(labels, n)
    },
  })
}

/** A tally by one label's values ({reason: n, ...}) as tallyCounter reads it, with `fixed` labels beside it. */
export function byLabel(label: string, tally: Readonly<Record<string, number>>, fixed: Readonly<Record<string, string>> = {}): Tallied[] {
  return Object.entries(tally).map(([value, n]) => [{ ...fixed, [label]: value }, n])
}
