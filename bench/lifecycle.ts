/**
 * Start-up and shut-down plumbing for the bench: a stack of clean-up steps
 * run in reverse order (each bounded in time, each failure reported and
 * skipped), one AbortSignal that Ctrl-C and SIGTERM trip, and small bounded
 * waiting helpers. Everything a scenario starts is registered here the
 * moment it exists, so an error or an interrupt at any point stops it.
 */
import { setTimeout as sleep } from 'node:timers/promises'

export { sleep }

/** How long one clean-up step may take before the next one runs anyway. */
const STEP_TIMEOUT_MS = 15_000

interface Step {
  name: string
  run: () => Promise<void> | void
}

export class Cleanup {
  private readonly steps: Step[] = []

  /** Registers a step; steps run last-registered first. */
  defer(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run })
  }

  /** Runs every registered step once, newest first; never throws. */
  async runAll(report: (line: string) => void): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await withTimeout(Promise.resolve().then(step.run), STEP_TIMEOUT_MS, `clean-up "${step.name}"`)
      } catch (err) {
        report(`clean-up "${step.name}" failed: ${errorText(err)}`)
      }
    }
  }
}

/** An AbortSignal tripped by the first SIGINT or SIGTERM; a second one exits at once. */
export function interruptSignal(report: (line: string) => void): AbortSignal {
  const controller = new AbortController()
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      report(`${name} again: exiting without clean-up`)
      process.exit(130)
    }
    report(`${name}: stopping everything (press Ctrl-C again to exit at once)`)
    controller.abort(new Error(`interrupted by ${name}`))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return controller.signal
}

/** Rejects when `promise` has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const timer = new AbortController()
  const timeout = sleep(ms, undefined, { signal: timer.signal, ref: false }).then(() => {
    throw new Error(`${what} did not finish within ${ms} ms`)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    timer.abort()
    timeout.catch(() => {})
  }
}

/** Polls `done` every `everyMs` until it is true or `limitMs` passed; true when it became true. */
export async function waitUntil(done: () => boolean, limitMs: number, signal: AbortSignal, everyMs = 10): Promise<boolean> {
  const deadline = performance.now() + limitMs
  while (!done()) {
    if (performance.now() >= deadline) return false
    await sleep(everyMs, undefined, { signal })
  }
  return true
}

/** Runs `task` over `items` with at most `concurrency` at once; results keep the input order. Stops taking items once `signal` trips. */
export async function inBatches<I, O>(
  items: readonly I[],
  concurrency: number,
  signal: AbortSignal,
  task: (item: I, index: number) => Promise<O>,
): Promise<O[]> {
  const results = new Array<O>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) {
      signal.throwIfAborted()
      results[i] = await task(items[i] as I, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return results
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
