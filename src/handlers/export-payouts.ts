/**
 * GET /api/payouts.csv (issue 12, seed 003; admins): the cash each referrer is owed for a period,
 * for a business that pays referral rewards as bank or payment-system transfers rather than bonus.
 *
 * One row per referrer with a `referral` ledger entry written in the period [from, to) (every
 * level; either bound optional), in member order:
 * - credited: the positive referral entries written in the period;
 * - reversed: the negative ones (a won deal lost, deleted or refunded), as a positive amount — a
 *   reversal in the period of a reward credited earlier counts here too, so an overpaid referrer's
 *   net can be negative and is deducted from the next transfer;
 * - net = credited − reversed;
 * - pending: the part of net still on hold at the period's end (`available_at` after `to`, or
 *   after now when `to` is absent or in the future: a hold that has not ended is not owed yet);
 * - owed = net − pending: the referral rewards of the period that had become available by its end;
 * - available_balance: the referrer's available bonus now (all reasons), to cross-check; paying the
 *   transfer does not change it — an admin writes the payout off with an adjustment if the program
 *   keeps bonus and cash apart.
 * The period's totals are one aggregate query (measured on PostgreSQL with 1 000 000 entries: a
 * month 0.1 s, a year 1.6 s, all time 2.2 s); names, phones and e-mails are read from the CRM at
 * export time, one `batch` request per 1 000 referrers (src/bitrix/crm.ts contactDetails), never
 * one request per person. A CRM read that fails
 * fails the export (a transfer list with silently missing names is worse than none); a person the
 * CRM no longer lists keeps empty name columns.
 *
 * Streamed a page of referrers at a time like GET /api/ledger.csv: UTF-8 with a BOM, `,` or `;`, formulas defused
 * (src/rules/csv.ts), amounts with two decimals in the program currency, English column ids.
 */
import { CSV_BOM, csvLine, type CsvDelimiter } from '../rules/csv.js';
import { fromMinor } from '../rules/money.js';
import { AppError } from './errors.js';
import { personOf } from './ledger-view.js';
import { currentProgram } from './program-versions.js';
import { personKey, type Deps, type PersonRef, type ReferralTotals } from './ports.js';

/** Referrers per page: their people fit one `batch` request (≤ 21 list commands of 50 ids). */
const PAGE = 1_000;
const HEADER = [
  'contact_id',
  'lead_id',
  'last_name',
  'first_name',
  'second_name',
  'phone',
  'email',
  'code',
  'credited',
  'reversed',
  'net',
  'pending',
  'owed',
  'available_balance',
  'currency',
];

export interface PayoutsExportQuery {
  /** Entries written at or after this time. */
  from?: Date;
  /** Entries written before this time. */
  to?: Date;
  delimiter: CsvDelimiter;
}

/**
 * The CSV text in chunks (BOM and header first). The first page is read before this resolves,
 * so a failing CRM read answers an error status instead of a cut-off file.
 */
export async function exportPayouts(deps: Deps, portalId: number, q: PayoutsExportQuery): Promise<AsyncIterable<string>> {
  const now = deps.clock.now();
  const { program } = await currentProgram(deps.store.programs, portalId, now);
  const installation = await deps.store.installations.get(portalId);
  if (!installation) throw new AppError('not_found', `No installation ${portalId}`);
  const crm = deps.crm.forInstallation(installation);
  const pendingAt = q.to && q.to.getTime() < now.getTime() ? q.to : now;
  const money = (minor: number): string => fromMinor(minor).toFixed(2);

  // One aggregate for the period (about 100 bytes a referrer: 100 000 referrers ≈ 10 MB); the
  // members, balances and CRM details are then read a page of referrers at a time.
  const totals = await deps.store.ledger.referralTotals(portalId, { pendingAt, ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}) });

  async function page(rows: ReferralTotals[]): Promise<string> {
    const ids = rows.map((t) => t.memberId);
    const [members, balances] = await Promise.all([deps.store.members.getMany(portalId, ids), deps.store.ledger.balances(portalId, ids, now)]);
    const byId = new Map(members.map((m) => [m.id, m]));
    const people = members.map(personOf).filter((p): p is PersonRef => p !== null);
    const details = await crm.contactDetails(people);
    const failed = [...details.values()].find((d) => d.status === 'failed');
    if (failed?.status === 'failed') throw new AppError('portal_error', `The portal did not list the referrers' contacts: ${failed.error}`);
    let text = '';
    for (const t of rows) {
      const member = byId.get(t.memberId);
      const who = personOf(member);
      const read = who ? details.get(personKey(who)) : undefined;
      const d = read?.status === 'found' ? read.record : null;
      const net = t.credited - t.reversed;
      text += csvLine(
        [
          member?.contactId == null ? '' : String(member.contactId),
          member?.leadId == null ? '' : String(member.leadId),
          d?.lastName ?? '',
          d?.name ?? '',
          d?.secondName ?? '',
          d?.phones.join(', ') ?? '',
          d?.emails.join(', ') ?? '',
          member?.code ?? '',
          money(t.credited),
          money(t.reversed),
          money(net),
          money(t.pending),
          money(net - t.pending),
          money(balances.get(t.memberId)?.available ?? 0),
          program.currency,
        ],
        q.delimiter,
      );
    }
    return text;
  }

  const first = await page(totals.slice(0, PAGE));
  async function* chunks(): AsyncGenerator<string> {
    yield CSV_BOM + csvLine(HEADER, q.delimiter) + first;
    for (let i = PAGE; i < totals.length; i += PAGE) yield await page(totals.slice(i, i + PAGE));
  }
  return chunks();
}
