/**
 * A SandboxClock that moves only when a test says so: time-dependent behaviour (the leaky
 * bucket, token expiry, delivery delays, robot waits, debounced writes) is then asserted at
 * exact instants, whatever the speed of the machine.
 */
import type { SandboxClock, SandboxTimer } from '../../sandbox/clock.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/** Lets what a fired timer started (promise continuations, I/O callbacks) run before the next one. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class ManualClock implements SandboxClock {
  private t: number;
  private seq = 0;
  private readonly timers = new Set<Pending>();

  /** Starts at the real time by default, so clients on the real clock (the SDK) take its tokens for fresh ones. */
  constructor(start = Date.now()) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): SandboxTimer {
    const pending: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.add(pending);
    return { cancel: () => void this.timers.delete(pending) };
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Moves time forward by `ms`, firing each timer that falls due on the way at its own instant,
   * in order; timers those set up fire too when they fall within the step.
   */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      const next = [...this.timers].filter((p) => p.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.timers.delete(next);
      this.t = next.at;
      next.fn();
      await turn();
    }
    this.t = target;
    await turn();
  }
}
