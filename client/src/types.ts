/**
 * The API's request and answer types, as the client sees them: the shared contract
 * (src/contract/api.ts) that the server's handlers answer with. Types only — the client does not
 * ship the contract's schemas.
 */
export type {
  CodeCheckAnswer as CodeCheck,
  CouponItem,
  DealAnswer,
  DealEntry,
  DealRedemption,
  LedgerItem,
  MemberAnswer,
  PersonEntity,
  PersonRef,
  RedemptionBlock,
  ReferralNode,
  ReferralTreeAnswer as ReferralTree,
  ReferralView,
  SessionAnswer,
} from '../../src/contract/api';
