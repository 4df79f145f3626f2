/**
 * The fleet's Prometheus metrics (prom-client, its own registry), served at
 * `/metrics` on 127.0.0.1 while a run goes: latency histograms (heartbeat
 * publish→PUBACK, command received→answered, how late a notification was
 * shown), reconnects, heartbeats sent and acknowledged, commands by
 * outcome, notifications shown, the syncing phones' transfers (S1, B1: items
 * seeded, uploaded, failed; backups made and failed), the phones connected,
 * and the report's lost and duplicated heartbeats, commands, notifications
 * and transfers (known once it reconciles them with the cloud, at the end:
 * counted then, before `/metrics` closes); and the process's own (CPU, RSS,
 * heap, event-loop lag, open fds: common/prom.ts).
 */
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type * as PromClient from 'prom-client'
import type { FleetReport } from './report.js'
import { FakephoneError } from '../common/errors.js'
import { keepIdleConnections } from '../common/http-keep-alive.js'
import { SECONDS, processRegistry, promClient } from '../common/prom.js'

export class FleetMetrics {
  private readonly prom = promClient()
  readonly registry = processRegistry()
  readonly heartbeatAck = new this.prom.Histogram({
    name: 'fakephone_fleet_heartbeat_puback_seconds',
    help: 'heartbeat publish to PUBACK',
    buckets: SECONDS,
    registers: [this.registry],
  })
  readonly commandAnswer = new this.prom.Histogram({
    name: 'fakephone_fleet_command_answer_seconds',
    help: 'command received to answered',
    buckets: SECONDS,
    registers: [this.registry],
  })
  readonly notificationDelay = new this.prom.Histogram({
    name: 'fakephone_fleet_notification_delay_seconds',
    help:
      "how late the phone showed a notification: from its createdAt (the cloud's clock when the cloud took it in) to when " +
      "the phone showed it (the phone's clock, which follows the cloud's; a jump of simulated time between counts in full)",
    buckets: SECONDS,
    registers: [this.registry],
  })
  readonly reconnects = new this.prom.Counter({
    name: 'fakephone_fleet_reconnects_total',
    help:
      'data channels connected again by the same phone after a drop ' +
      '(a phone back from a planned outage is a new start, not counted here)',
    registers: [this.registry],
  })
  /** Each a count of its own: an acknowledged heartbeat was sent too, so one label set summed would count it twice. */
  readonly heartbeatsSent = this.counter('heartbeats_sent', 'heartbeats the phones sent')
  readonly heartbeatsAcked = this.counter('heartbeats_acked', 'heartbeats the cloud acknowledged (PUBACK), of those sent')
  /** Each of the fleet's commands counts once at most, under one outcome: the outcomes sum to the commands so settled. */
  readonly commands = new this.prom.Counter({
    name: 'fakephone_fleet_commands_total',
    help:
      "the fleet's commands settled as the plan says, by outcome, each under one: succeeded or failed (answered so), " +
      'ignored (the phone stayed silent)',
    labelNames: ['outcome'],
    registers: [this.registry],
  })
  readonly notificationsShown = this.counter('notifications_shown', "the fleet's notifications shown, each once")
  readonly transfers = new this.prom.Counter({
    name: 'fakephone_fleet_transfers_total',
    help: "the syncing phones' transfers, by outcome (seeded, uploaded: acknowledged by the cloud, failed, backup-made, backup-failed)",
    labelNames: ['outcome'],
    registers: [this.registry],
  })

  /** The report's `lost` and `duplicated` counts (fleet/report.ts), under the report's names. */
  readonly reported = {
    heartbeatsLost: this.counter(
      'heartbeats_lost',
      'heartbeats sent that the cloud did not store (without the console API: not acknowledged)',
    ),
    heartbeatsDuplicated: this.counter('heartbeats_duplicated', 'heartbeats acknowledged twice'),
    commandsLost: this.counter('commands_lost', "the fleet's commands not answered, refused or ignored as planned"),
    notificationsLost: this.counter('notifications_lost', "the fleet's notifications not shown"),
    notificationsDuplicated: this.counter('notifications_duplicated', "the fleet's notifications shown again"),
    transfersLost: this.counter(
      'transfers_lost',
      'items seeded with their sync on that never reached the cloud, or that it does not hold, no switch or outage holding them',
    ),
  }

  constructor(connected: () => number) {
    new this.prom.Gauge({
      name: 'fakephone_fleet_phones_connected',
      help: 'phones with the data channel up',
      registers: [this.registry],
      collect() {
        this.set(connected())
      },
    })
  }

  /** Counts the report's losses and duplicates, once the report has reconciled them. */
  countReport(r: Pick<FleetReport, 'heartbeats' | 'commands' | 'notifications' | 'transfers'>): void {
    this.reported.heartbeatsLost.inc(r.heartbeats.lost)
    this.reported.heartbeatsDuplicated.inc(r.heartbeats.duplicated)
    this.reported.commandsLost.inc(r.commands.lost)
    this.reported.notificationsLost.inc(r.notifications.lost)
    this.reported.notificationsDuplicated.inc(r.notifications.duplicated)
    this.reported.transfersLost.inc(r.transfers.lost)
  }

  private counter(name: string, help: string): PromClient.Counter {
    return new this.prom.Counter({ name: `fakephone_fleet_${name}_total`, help, registers: [this.registry] })
  }

  /** Serves `/metrics` on 127.0.0.1 at `port` (0: one the OS picks); resolves with the port and a close. */
  serve(port: number): Promise<MetricsServer> {
    return serveMetrics(port, () => this.registry)
  }
}

export interface MetricsServer {
  port: number
  close(): Promise<void>
}

/** Serves the registry `current()` gives at each scrape (a `--workers` run's: every worker's metrics summed). */
export async function serveMetrics(port: number, current: () => PromClient.Registry): Promise<MetricsServer> {
  // Kept open between scrapes (Prometheus's every 15 s reuses one connection): common/http-keep-alive.ts.
  const server: Server = keepIdleConnections(
    createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found: try /metrics\n')
        return
      }
      const registry = current()
      void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text))
    }),
  )
  server.listen(port, '127.0.0.1')
  try {
    await once(server, 'listening')
  } catch (err) {
    // A port in use said in one line, with what to give, before any phone starts (a stack trace under `fatal:` was all).
    const hint = 'give another port, or 0 for one the OS picks'
    throw new FakephoneError('USAGE', `--metrics-port ${port}: ${(err as Error).message}; ${hint}`)
  }
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
