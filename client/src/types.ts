/**
 * The API's request and answer types, as the client sees them. Re-exported from the shared
 * contract (src/contract/api.ts) that the server's handlers answer with.
 */
export type PersonEntity = 'contact' | 'lead';
export interface PersonRef {
  entity: PersonEntity;
  id: number;
}

// Until the shared contract lands these mirror the server's handler types.
export type EntryStatus = 'pending' | 'available' | 'reversed' | 'expired';
export interface LedgerItem {
  id: number;
  at: string;
  reason: string;
  kind: string;
  amount: number;
  status: EntryStatus;
  dealId: number | null;
  level: number;
  availableAt: string;
  comment: string | null;
  capped: number;
  shortfall: number;
  fx: { currency: string; rate: string; amount: number } | null;
}
export interface CouponItem {
  code: string;
  value: number;
  milestone: number;
  status: string;
  issuedAt: string;
}
export interface ReferralView {
  id: number;
  status: string;
  rejectReason: string | null;
  code: string | null;
  referee: PersonRef | null;
  referrer: PersonRef | null;
  source: string;
  sourceRef: string;
  createdAt: string;
  override: { by: number; at: string; comment: string } | null;
}
export interface MemberAnswer {
  entity: PersonEntity;
  id: number;
  enrolled: boolean;
  code: string | null;
  link: string | null;
  joinedAt: string | null;
  currency: string;
  balance: number;
  pending: number;
  tier: string | null;
  nextTier: { name: string; from: number } | null;
  tierProgress?: { basis: 'won_amount' | 'won_count'; value: number; nextFrom: number | null };
  referrals: number;
  referrer: PersonRef | null;
  expiring: { total: number; dates: { at: string; amount: number }[] };
  referral: ReferralView | null;
  referralHistory: ReferralView[];
  ledger: LedgerItem[];
  coupons: CouponItem[];
  nextBefore: number | null;
}
export interface DealEntry extends LedgerItem {
  member: PersonRef | null;
}
export interface DealAnswer {
  id: number;
  currency: string;
  referral: {
    id: number;
    code: string | null;
    referrer: PersonRef | null;
    source: string;
    status: string;
    rejectReason: string | null;
    override: { by: number; at: string; comment: string } | null;
  } | null;
  entries: DealEntry[];
  coupons: (CouponItem & { member: PersonRef | null })[];
  client: (PersonRef & { balance: number; pending: number }) | null;
  redemption?: { dealAmount: number; dealCurrency: string; redeemed: number; maxNow: number; open: boolean };
}
export interface ReferralNode {
  person: PersonRef | null;
  status: string;
  rejectReason: string | null;
  createdAt: string;
  qualified: boolean;
  earned: number;
  children: ReferralNode[];
}
export interface ReferralTree {
  nodes: ReferralNode[];
  truncated: boolean;
}
export interface SessionAnswer {
  userId: number;
  isAdmin: boolean;
  program: {
    currency: string;
    redemption: { maxPercentOfDeal: number };
  };
}
export interface CodeCheck {
  code: string;
  valid: boolean;
  referrer?: PersonRef;
  reason?: string;
}
