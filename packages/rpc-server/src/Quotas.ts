/**
 * Per-tenant quotas (SPEC 8): how many events may be scheduled at once (checked by the
 * coordinator in the scheduling transaction) and how many requests per second (a token bucket
 * per tenant, here, in the server's memory: each replica counts its own).
 *
 * @since 0.1.0
 */

/**
 * A tenant's limits. An absent limit is no limit.
 *
 * @since 0.1.0
 */
export interface Quota {
  /** Scheduled (not yet ended) events at once. */
  readonly activeEvents?: number | undefined
  /** Requests per second, sustained. */
  readonly requestsPerSecond?: number | undefined
  /** Requests allowed in one burst; default `requestsPerSecond` (one second's worth). */
  readonly burst?: number | undefined
}

/**
 * The quotas of every tenant: `default` for tenants without their own entry.
 *
 * @since 0.1.0
 */
export interface Quotas {
  readonly default?: Quota | undefined
  readonly tenants?: Readonly<Record<string, Quota>> | undefined
}

/** What a server allows a tenant that nothing else configures. @since 0.1.0 */
export const DEFAULT_QUOTA: Quota = { activeEvents: 100_000, requestsPerSecond: 1_000, burst: 2_000 }

/** @since 0.1.0 */
export const quotaOf = (quotas: Quotas, tenant: string): Quota =>
  quotas.tenants?.[tenant] ?? quotas.default ?? DEFAULT_QUOTA

/**
 * Token buckets per tenant. `take` answers 0 when a request may go now, else how many ms until it
 * may.
 *
 * @since 0.1.0
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()
  private readonly quotas: Quotas

  constructor(quotas: Quotas) {
    this.quotas = quotas
  }

  take(tenant: string, now: number): number {
    const quota = quotaOf(this.quotas, tenant)
    const rate = quota.requestsPerSecond
    if (rate === undefined) return 0
    const capacity = Math.max(1, quota.burst ?? rate)
    let bucket = this.buckets.get(tenant)
    if (bucket === undefined) {
      bucket = { tokens: capacity, at: now }
      this.buckets.set(tenant, bucket)
    } else {
      bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.at) * rate) / 1000)
      bucket.at = now
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / rate))
  }
}
