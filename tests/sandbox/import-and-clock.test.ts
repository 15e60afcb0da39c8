/**
 * What the demo's history needs of the sandbox: a clock that only moves forward and joins the
 * wall clock, an import that keeps the dates rows had elsewhere, a second pipeline, and an
 * expired access token that still answers expired_token after days away (so the app refreshes).
 */
import { describe, expect, it } from 'vitest';
import { createSteppedClock } from '../../sandbox/clock.js';
import { createPortal } from '../../sandbox/portal.js';
import type { ChangeNote } from '../../sandbox/types.js';

const DAY = 86_400_000;

describe('the stepped clock', () => {
  it('starts in the past, moves only forward, never past the wall clock, and joins it when released', () => {
    const clock = createSteppedClock(Date.now() - 30 * DAY);
    expect(clock.released).toBe(false);
    const start = clock.now();
    expect(Date.now() - start).toBeGreaterThanOrEqual(30 * DAY - 1000);
    clock.advanceTo(start + 7 * DAY);
    expect(clock.now()).toBeGreaterThanOrEqual(start + 7 * DAY);
    expect(() => clock.advanceTo(start)).toThrow(/never goes back/);
    clock.advanceTo(Date.now() + 365 * DAY);
    expect(clock.released).toBe(true);
    expect(Math.abs(clock.now() - Date.now())).toBeLessThan(1000);
    clock.release();
    expect(clock.released).toBe(true);
  });
});

describe('import and pipelines', () => {
  it('keeps the dates of imported rows, closes won deals at their close date, and reports each add', () => {
    const clock = createSteppedClock(Date.now() - 100 * DAY);
    const portal = createPortal({ domain: 'import.test', clock });
    const notes: ChangeNote[] = [];
    portal.onChange((n) => notes.push(n));
    const wholesale = portal.addCategory('Оптовые продажи');
    expect(portal.addCategory('Оптовые продажи')).toBe(wholesale);
    expect(portal.stages('deal', wholesale).map((s) => [s.STATUS_ID, s.SEMANTICS])).toEqual([
      [`C${wholesale}:NEW`, null],
      [`C${wholesale}:EXECUTING`, null],
      [`C${wholesale}:WON`, 'S'],
      [`C${wholesale}:LOSE`, 'F'],
    ]);
    const created = clock.now() - 60 * DAY;
    const closed = created + 10 * DAY;
    const [contact] = portal.importEntities('contact', [{ fields: { NAME: 'Пётр' }, createdAt: created }], { userId: 2 });
    const [deal, bulk] = portal.importEntities(
      'deal',
      [
        { fields: { TITLE: 'Диван', OPPORTUNITY: 50_000, CONTACT_ID: contact, STAGE_ID: 'WON' }, createdAt: created, closedAt: closed },
        { fields: { TITLE: 'Опт', OPPORTUNITY: 300_000, CONTACT_ID: contact, CATEGORY_ID: wholesale, STAGE_ID: `C${wholesale}:WON` }, createdAt: created, closedAt: closed },
      ],
      { userId: 2 },
    );
    const row = portal.getEntity('deal', deal!)!;
    expect(Date.parse(String(row.DATE_CREATE))).toBe(Math.floor(created / 1000) * 1000);
    expect(Date.parse(String(row.MOVED_TIME))).toBe(Math.floor(closed / 1000) * 1000);
    expect(Date.parse(String(row.DATE_MODIFY))).toBe(Math.floor(closed / 1000) * 1000);
    expect(String(row.CLOSEDATE).slice(0, 10)).toBe(new Date(closed + 3 * 3600_000).toISOString().slice(0, 10));
    expect(row.STAGE_SEMANTIC_ID).toBe('S');
    expect(portal.getEntity('deal', bulk!)!.CATEGORY_ID).toBe(String(wholesale));
    expect(notes.map((n) => [n.kind, n.entity])).toEqual([
      ['add', 'contact'],
      ['add', 'deal'],
      ['add', 'deal'],
    ]);
  });

  it('refuses rows dated in the future or closed before they were created, and adds none of the batch', () => {
    const portal = createPortal({ domain: 'import.test' });
    const now = Date.now();
    expect(() => portal.importEntities('contact', [{ fields: { NAME: 'А' }, createdAt: now - DAY }, { fields: { NAME: 'Б' }, createdAt: now + DAY }], { userId: 2 })).toThrow(/Row 1/);
    expect(() => portal.importEntities('contact', [{ fields: { NAME: 'В' }, createdAt: now - DAY, closedAt: now - 2 * DAY }], { userId: 2 })).toThrow(/Row 0/);
    expect(portal.listEntities('contact', { start: -1, select: ['ID'] }).rows).toHaveLength(0);
  });
});

describe('tokens after days away', () => {
  it('answers expired_token (not an unknown token) for a pair whose refresh token still lives, and refreshes it', () => {
    const clock = createSteppedClock(Date.now() - 30 * DAY);
    const portal = createPortal({ domain: 'tokens.test', clock });
    portal.upsertApp({ clientId: 'app', clientSecret: 's', code: 'app', title: 'App', version: '1', scope: 'crm', handlerUrl: 'http://x/', installUrl: 'http://x/i' });
    const pair = portal.issueTokens('app', 1);
    clock.advanceTo(clock.now() + 7 * DAY);
    // Issuing another pair prunes what is stale.
    portal.issueTokens('app', 2);
    expect(portal.authenticate(pair.accessToken)).toBe('expired');
    const fresh = portal.refresh('app', 's', pair.refreshToken);
    expect(portal.authenticate(fresh.accessToken)).toEqual({ clientId: 'app', userId: 1 });
    expect(portal.authenticate(pair.accessToken)).toBeNull();
  });
});
