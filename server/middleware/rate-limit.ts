/**
 * Per-client rate limiting of public routes (the referral link is the only route anyone on the
 * internet may call without credentials). A token bucket per key — `burst` requests at once,
 * refilled at `perSecond` — on the injected clock, so tests move time instead of waiting. One
 * process's memory: behind several instances each enforces its own share, which bounds abuse
 * without a shared store on the public path. Over the limit: `429` with `Retry-After`.
 */
import type { NextFunction, Request, Response } from 'express';
import type { Clock } from '../../src/handlers/ports.js';

export interface RateLimitOptions {
  burst: number;
  perSecond: number;
  clock: Clock;
  /** The client's key; the address Express derives under the app's `trust proxy` setting. */
  keyOf?: (req: Request) => string;
  /** Buckets kept at most; when full, the ones refilled to the brim (idle) are dropped first. */
  maxKeys?: number;
  /** What a refused request gets, after the status and Retry-After are set. */
  onLimited?: (req: Request, res: Response) => void;
}

/**
 * The bucket key of a client address: an IPv4 address as it is, an IPv6 address by its /64 —
 * one subscriber's network, in which a client can pick a fresh address for every request.
 */
export function addressKey(address: string): string {
  const ip = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  if (!ip.includes(':')) return ip;
  const [head = '', tail] = ip.toLowerCase().split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function rateLimit(o: RateLimitOptions) {
  const buckets = new Map<string, Bucket>();
  const maxKeys = o.maxKeys ?? 100_000;
  const keyOf = o.keyOf ?? ((req: Request) => addressKey(req.ip ?? req.socket.remoteAddress ?? ''));

  const refill = (b: Bucket, now: number) => {
    b.tokens = Math.min(o.burst, b.tokens + ((now - b.at) / 1000) * o.perSecond);
    b.at = now;
  };

  const evict = (now: number) => {
    for (const [key, b] of buckets) {
      refill(b, now);
      if (b.tokens >= o.burst) buckets.delete(key);
    }
    // Everyone is mid-burst: forget the oldest half rather than grow without bound.
    if (buckets.size >= maxKeys) [...buckets.keys()].slice(0, Math.ceil(buckets.size / 2)).forEach((k) => buckets.delete(k));
  };

  return (req: Request, res: Response, next: NextFunction): void => {
    const now = o.clock.now().getTime();
    const key = keyOf(req);
    let bucket = buckets.get(key);
    if (!bucket) {
      if (buckets.size >= maxKeys) evict(now);
      bucket = { tokens: o.burst, at: now };
      buckets.set(key, bucket);
    }
    refill(bucket, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      next();
      return;
    }
    const waitSeconds = Math.max(1, Math.ceil(((1 - bucket.tokens) / o.perSecond)));
    res.status(429).set('Retry-After', String(waitSeconds));
    if (o.onLimited) o.onLimited(req, res);
    else res.type('text').send('Too many requests');
  };
}
