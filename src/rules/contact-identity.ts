/**
 * Self-referral by a shared phone or e-mail (SPEC 5): one person with two CRM records — a lead and
 * a contact, or two contacts — must not refer themselves. Phones and e-mails are compared in a
 * normalised form, because the CRM keeps what a manager typed: `8 (999) 123-45-67`,
 * `+7 999 123 45 67` and `79991234567` are one Russian number, and `Ann@Mail.RU ` is `ann@mail.ru`.
 */

/** Fewer digits than this are extensions or typos, not numbers a person can be told apart by. */
const MIN_PHONE_DIGITS = 7;
const MAX_PHONE_DIGITS = 15; // E.164

/**
 * Digits only, with the Russian trunk prefix handled: an 11-digit number starting with 8 is the
 * domestic form of +7 (8 999 … = +7 999 …), and a 10-digit number starting with 9 is a Russian
 * mobile written without its country code. Null when too short or too long to be a number.
 */
export function normalizePhone(raw: string): string | null {
  let digits = raw.replace(/\D/g, '');
  if (digits.length === 11 && digits.startsWith('8')) digits = `7${digits.slice(1)}`;
  else if (digits.length === 10 && digits.startsWith('9')) digits = `7${digits}`;
  if (digits.length < MIN_PHONE_DIGITS || digits.length > MAX_PHONE_DIGITS) return null;
  return digits;
}

/** Trimmed and lower-cased; null when it is not an address (no `@` between a local part and a domain). */
export function normalizeEmail(raw: string): string | null {
  const email = raw.trim().toLowerCase();
  return /^[^\s@]+@[^\s@]+$/.test(email) ? email : null;
}

export interface ContactPoints {
  phones: string[];
  emails: string[];
}

/** The normalised identities of a person's records, as `phone:…` and `email:…` keys. */
export function identitiesOf(records: ContactPoints[]): Set<string> {
  const out = new Set<string>();
  for (const r of records) {
    for (const p of r.phones) {
      const n = normalizePhone(p);
      if (n) out.add(`phone:${n}`);
    }
    for (const e of r.emails) {
      const n = normalizeEmail(e);
      if (n) out.add(`email:${n}`);
    }
  }
  return out;
}

/** Whether two people share a phone or an e-mail (each may have several CRM records). */
export function sharesContactPoint(a: ContactPoints[], b: ContactPoints[]): boolean {
  const mine = identitiesOf(a);
  if (!mine.size) return false;
  for (const id of identitiesOf(b)) if (mine.has(id)) return true;
  return false;
}
