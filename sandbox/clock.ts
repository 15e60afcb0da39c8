/**
 * The sandbox's only source of time: token lifetimes, the leaky bucket, timestamps on the wire,
 * delivery delays and timeouts, robot waits and debounced state writes all read it, so a test
 * can drive the portal's time explicitly instead of depending on how fast the machine is.
 */
export interface SandboxTimer {
  cancel(): void;
}

export interface SandboxClock {
  /** Unix ms. */
  now(): number;
  /** Calls `fn` once `ms` of this clock's time have passed. */
  setTimer(ms: number, fn: () => void): SandboxTimer;
}

/**
 * Wall-clock time. Its timers do not keep the process alive: the sandbox's HTTP server does
 * while it listens, and a pending debounced write or a robot's ten-minute wait must not.
 */
export const realClock: SandboxClock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** Resolves after `ms` of the clock's time. */
export function sleepOn(clock: SandboxClock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(ms, resolve));
}

/**
 * Wall-clock time shifted into the past by an offset that only ever shrinks, so whoever reads
 * it sees time run forward, faster than the wall clock whenever `advanceTo` jumps. A demo
 * starts it months back, replays its history step by step and ends with `release()` at the
 * wall clock (offset 0). Timers run on real durations: a forward jump only makes them late,
 * as if the machine had paused.
 */
export interface SteppedClock extends SandboxClock {
  /** Moves to `ms` (Unix ms); refuses to go back. */
  advanceTo(ms: number): void;
  /** Joins the wall clock for good: offset 0. */
  release(): void;
  /** True once released (or when started at the wall clock). */
  readonly released: boolean;
}

export function createSteppedClock(startMs: number = Date.now()): SteppedClock {
  let offset = Math.min(0, startMs - Date.now());
  return {
    now: () => Date.now() + offset,
    setTimer: realClock.setTimer,
    advanceTo(ms) {
      const current = Date.now() + offset;
      if (ms < current) throw new Error(`the clock never goes back (asked ${new Date(ms).toISOString()}, now ${new Date(current).toISOString()})`);
      // Past the wall clock is the wall clock: a demo never runs ahead of real time.
      offset = Math.min(0, ms - Date.now());
    },
    release() {
      offset = 0;
    },
    get released() {
      return offset === 0;
    },
  };
}
