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
