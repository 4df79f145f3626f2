/**
 * M2: runs one job per item with a few at once, so a transfer of many small
 * blobs is not one round trip (and one fsync at the other end) after
 * another. Items start in order; once `signal` is aborted no new one starts,
 * the ones running finish, and then the abort is thrown (also when it came
 * as the last ones ran: the caller goes no further).
 */
export async function eachAtOnce<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) {
      signal?.throwIfAborted()
      await fn(items[i] as T, i)
    }
  }
  const done = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker))
  signal?.throwIfAborted()
  const failed = done.find((d) => d.status === 'rejected')
  if (failed) throw failed.reason
}
