/**
 * The console's side of the console API: what `fakephone console` and the
 * demo's live view use to read the cloud.
 */
import type { DeviceView, LocationRow } from './state-store.js'

export class ConsoleApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

export class ConsoleClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  devices(): Promise<{ now: number; devices: DeviceView[] }> {
    return this.get('/api/devices')
  }

  history(id: string, limit: number): Promise<{ now: number; device: string; history: LocationRow[] }> {
    return this.get(`/api/devices/${encodeURIComponent(id)}/history?limit=${limit}`)
  }

  private async get<T>(path: string): Promise<T> {
    let res: Response
    try {
      res = await fetch(new URL(path, this.baseUrl), { headers: { authorization: `Bearer ${this.token}` } })
    } catch (err) {
      throw new ConsoleApiError(0, `cannot reach the broker at ${this.baseUrl}: ${(err as Error).cause ?? (err as Error).message}`)
    }
    const body = (await res.json()) as T & { error?: string }
    if (!res.ok) throw new ConsoleApiError(res.status, body.error ?? `HTTP ${res.status}`)
    return body
  }
}
