/**
 * Runs `fn` over `items` with at most `limit` in flight. On the first failure no new item starts; the ones in flight
 * are awaited, then the first error is thrown (so a caller never leaves requests running behind its back). Once
 * `stop` is aborted no new item starts either; the ones in flight are awaited and the pool returns what it has (the
 * caller checks `stop.aborted`).
 */
export async function runPool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  stop?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length && !stop?.aborted) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.err;
  return results;
}
