/** readEntities: lists by id in as few commands as possible; asks `get` only about what a list left out. */
import { describe, expect, it } from 'vitest';
import { readEntities } from '../../../src/handlers/crm-entities.js';
import type { BatchCommand, BatchOutcome } from '../../../src/handlers/ports.js';

function fakeGateway(rows: Record<string, Record<number, Record<string, unknown>>>, getAnswers: Record<string, BatchOutcome> = {}) {
  const sent: BatchCommand[][] = [];
  return {
    sent,
    async batch(commands: BatchCommand[]): Promise<BatchOutcome[]> {
      sent.push(commands);
      return commands.map((c) => {
        const [, entity, verb] = c.method.split('.');
        if (verb === 'list') {
          const ids = ((c.params!.filter as Record<string, unknown>)['@ID'] as number[]).map(Number);
          return { ok: true, result: ids.filter((id) => rows[entity!]?.[id]).map((id) => rows[entity!]![id]) };
        }
        return getAnswers[`${entity}:${String(c.params!.id)}`] ?? { ok: false, error: '', description: 'Not found' };
      });
    },
  };
}

describe('readEntities', () => {
  it('reads 120 deals and 3 contacts with one list command per 50 ids, in one round', async () => {
    const deals = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [i + 1, { ID: String(i + 1), TITLE: `d${i + 1}` }]));
    const gw = fakeGateway({ deal: deals, contact: { 7: { ID: '7' }, 8: { ID: '8' }, 9: { ID: '9' } } });
    const refs = [...Array.from({ length: 120 }, (_, i) => ({ entity: 'deal' as const, id: i + 1 })), { entity: 'contact' as const, id: 8 }, { entity: 'contact' as const, id: 7 }, { entity: 'contact' as const, id: 9 }];
    const out = await readEntities(gw, refs);
    expect(gw.sent).toHaveLength(1);
    expect(gw.sent[0]!.map((c) => [c.method, ((c.params!.filter as Record<string, unknown[]>)['@ID'])!.length, c.params!.start])).toEqual([
      ['crm.deal.list', 50, -1],
      ['crm.deal.list', 50, -1],
      ['crm.deal.list', 20, -1],
      ['crm.contact.list', 3, -1],
    ]);
    expect(gw.sent[0]![0]!.params!.select).toEqual(['*', 'UF_*']);
    expect(out.map((o) => (o.ok ? (o.result as { ID: string }).ID : o.description))).toEqual([...Array.from({ length: 120 }, (_, i) => String(i + 1)), '8', '7', '9']);
  });

  it('asks get about an id the list left out: "Not found" and "Access denied" stay apart', async () => {
    const gw = fakeGateway({ deal: { 1: { ID: '1' } } }, { 'deal:3': { ok: false, error: '', description: 'Access denied' } });
    const out = await readEntities(gw, [
      { entity: 'deal', id: 1 },
      { entity: 'deal', id: 2 },
      { entity: 'deal', id: 3 },
    ]);
    expect(gw.sent).toHaveLength(2);
    expect(gw.sent[1]!.map((c) => `${c.method}:${String(c.params!.id)}`)).toEqual(['crm.deal.get:2', 'crm.deal.get:3']);
    expect(out).toEqual([
      { ok: true, result: { ID: '1' } },
      { ok: false, error: '', description: 'Not found' },
      { ok: false, error: '', description: 'Access denied' },
    ]);
  });

  it('a failed list command fails its ids, without a second round', async () => {
    const gw = {
      sent: 0,
      async batch(commands: BatchCommand[]): Promise<BatchOutcome[]> {
        this.sent++;
        return commands.map(() => ({ ok: false, error: 'ACCESS_DENIED', description: 'Access denied' }));
      },
    };
    const out = await readEntities(gw, [{ entity: 'lead', id: 4 }]);
    expect(gw.sent).toBe(1);
    expect(out).toEqual([{ ok: false, error: 'ACCESS_DENIED', description: 'Access denied' }]);
  });
});
