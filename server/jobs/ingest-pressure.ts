/**
 * Event deliveries in flight, as the queue worker sees them. Bitrix24 gives a handler about
 * 10 s and does not retry (reference §4.4): a bulk change arrives as thousands of concurrent
 * POSTs, and on the embedded store a worker run holds the one thread for long stretches, so
 * acknowledgements behind it are answered late or never. The worker therefore starts a run only
 * when no delivery is in flight (or after `maxDeferMs`, so a steady stream cannot starve it): the
 * burst is acknowledged first, then processed — in bigger, cheaper batches.
 */
export interface IngestPressure {
  /** A delivery started; call the returned function once it is answered (or aborted). */
  begin(): () => void;
  /** Deliveries are being answered right now, or were within the last `quietMs`. */
  busy(): boolean;
}

export function createIngestPressure(opts: { quietMs?: number; elapsedMs?: () => number } = {}): IngestPressure {
  const quietMs = opts.quietMs ?? 20;
  const elapsedMs = opts.elapsedMs ?? (() => performance.now());
  let inFlight = 0;
  let lastEnd = -Infinity;
  return {
    begin() {
      inFlight++;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        inFlight--;
        lastEnd = elapsedMs();
      };
    },
    busy: () => inFlight > 0 || elapsedMs() - lastEnd < quietMs,
  };
}
