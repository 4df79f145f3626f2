/**
 * One MQTT client connection as every fakephone part wants it: TCP_NODELAY
 * on each new socket (Nagle otherwise adds 20-40 ms to every round trip),
 * mqtt.js's own fixed one-second reconnect replaced by capped exponential
 * backoff with jitter on the injected clock, and typed state events.
 */
import { EventEmitter } from 'node:events'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { RetryTimer, type BackoffOptions } from './backoff.js'
import type { Clock } from './clock.js'
import type { Logger } from './log.js'

export type LinkState = 'connecting' | 'connected' | 'waiting' | 'stopped'

interface LinkEvents {
  state: [state: LinkState]
  connect: []
}

export interface LinkOptions {
  url: string
  mqtt: IClientOptions
  clock: Clock
  log: Logger
  backoff?: BackoffOptions
  random?: () => number
}

export class MqttLink extends EventEmitter<LinkEvents> {
  readonly client: MqttClient
  private readonly retry: RetryTimer
  private stateNow: LinkState = 'connecting'

  constructor(private readonly opts: LinkOptions) {
    super()
    this.retry = new RetryTimer(opts.clock, opts.backoff, opts.random)
    this.client = mqtt.connect(opts.url, { ...opts.mqtt, reconnectPeriod: 0 })
    this.client.on('connect', () => {
      const stream = this.client.stream as { setNoDelay?: (on: boolean) => void }
      stream.setNoDelay?.(true)
      this.retry.reset()
      this.setState('connected')
      this.emit('connect')
    })
    this.client.on('close', () => this.scheduleRetry())
    this.client.on('error', (err) => opts.log.warn({ err: err.message }, 'mqtt connection error'))
  }

  get state(): LinkState {
    return this.stateNow
  }

  /** Delay chosen for the retry now waiting, ms (for status displays and tests). */
  get lastDelayMs(): number {
    return this.retry.lastDelayMs
  }

  get connected(): boolean {
    return this.client.connected
  }

  /**
   * Closes the connection for good; no retry follows. Callers await what must
   * arrive before calling this. The close is forced: after a reconnect
   * mqtt.js 5 can keep entries of the old connection in its in-flight table
   * forever, and an unforced end() waits for that table to empty.
   */
  async stop(): Promise<void> {
    this.setState('stopped')
    this.retry.cancel()
    await this.client.endAsync(true)
  }

  private scheduleRetry(): void {
    if (this.stateNow === 'stopped' || this.retry.pending) return
    this.retry.schedule(() => {
      this.setState('connecting')
      this.client.reconnect()
    })
    this.setState('waiting')
    this.opts.log.info({ delayMs: this.retry.lastDelayMs, attempt: this.retry.attempts }, 'mqtt disconnected, retrying')
  }

  private setState(state: LinkState): void {
    this.stateNow = state
    this.emit('state', state)
  }
}
