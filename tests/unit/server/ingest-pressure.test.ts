import { describe, expect, it } from 'vitest';
import { createIngestPressure } from '../../../server/jobs/ingest-pressure.js';

describe('ingest pressure', () => {
  it('is busy while a delivery is in flight and for quietMs after the last one ends', () => {
    let t = 0;
    const p = createIngestPressure({ quietMs: 20, elapsedMs: () => t });
    expect(p.busy()).toBe(false);
    const endA = p.begin();
    const endB = p.begin();
    t = 100;
    endA();
    endA(); // a second call (finish, then close) counts once
    expect(p.busy()).toBe(true);
    t = 200;
    endB();
    t = 219;
    expect(p.busy()).toBe(true);
    t = 220;
    expect(p.busy()).toBe(false);
  });
});
