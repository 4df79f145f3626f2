/**
 * X3: the vendor's own service notifications -- weather warnings and
 * system-update reminders, in turn -- queued for every registered device on
 * a schedule on the injected clock. Off unless the broker is given an
 * interval (`fakephone broker --service-notices 1h`).
 */
import type { Clock, Timer } from '../../common/clock.js'
import type { Logger } from '../../common/log.js'
import type { NewNotification, NotificationQueue } from './notification-queue.js'

const HOUR = 3_600_000

const WEATHER: readonly string[] = [
  'Yellow wind warning: gusts of 60-70 mph expected this evening.',
  'Heavy rain from 14:00: take care on the roads.',
  'Thunderstorms likely tonight; lightning and hail possible.',
  'Ice warning overnight: untreated surfaces will be slippery.',
]

/** The notice of a given round: even rounds warn of weather (valid 6 h), odd ones remind of an update (valid 7 d). */
export function serviceNotice(round: number): NewNotification {
  if (round % 2 === 0) {
    return { kind: 'weather', title: 'Weather warning', body: WEATHER[(round / 2) % WEATHER.length] as string, ttlMs: 6 * HOUR }
  }
  return {
    kind: 'system-update',
    title: 'System update available',
    body: `fakephone OS 1.${(round + 1) / 2} is ready to install.`,
    ttlMs: 7 * 24 * HOUR,
  }
}

export class ServiceNotices {
  private timer: Timer | null = null
  private round = 0

  constructor(
    private readonly queue: NotificationQueue,
    private readonly devices: () => string[],
    private readonly clock: Clock,
    private readonly everyMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = this.clock.after(this.everyMs, () => {
      this.send()
      this.start()
    })
  }

  stop(): void {
    this.timer?.cancel()
    this.timer = null
  }

  private send(): void {
    const notice = serviceNotice(this.round++)
    const devices = this.devices()
    for (const id of devices) this.queue.enqueue(id, notice)
    this.log.info({ kind: notice.kind, devices: devices.length }, 'service notice queued for every device')
  }
}
