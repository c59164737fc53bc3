import { describe, expect, it } from "@effect/vitest"
import { Duration, Either, FastCheck as fc } from "effect"
import * as Lifetime from "../../src/internal/lifetime.js"
import { makeEntry } from "../../src/testing/StoreContract.js"

const defaults = { ttl: Duration.days(3), renewalGrace: Duration.minutes(1) }

const lifetime = (options: Parameters<typeof Lifetime.fromOptions>[0]) => {
  const result = Lifetime.fromOptions(options, defaults)
  if (Either.isLeft(result)) throw new Error(result.left)
  return result.right
}

const time = fc.integer({ min: 0, max: 2 ** 40 })
const span = fc.option(fc.integer({ min: 1, max: 2 ** 32 }), { nil: undefined })

describe("Lifetime", () => {
  it("takes the defaults and refuses unusable durations and thresholds", () => {
    const base = lifetime({})
    expect(base.ttlMillis).toBe(Duration.toMillis(Duration.days(3)))
    expect(base.renewalGrace).toBe(60_000)
    expect(base.rotationGrace).toBe(0)
    expect(base.rolling).toBe(false)
    expect(Lifetime.fromOptions({ ttl: 0 }, defaults)).toEqual(
      Either.left("the session ttl must be a finite duration of at least 1 millisecond")
    )
    expect(Either.isLeft(Lifetime.fromOptions({ idleTimeout: Duration.infinity }, defaults))).toBe(true)
    expect(Either.isLeft(Lifetime.fromOptions({ rotationGrace: Duration.infinity }, defaults))).toBe(true)
    expect(Either.isLeft(Lifetime.fromOptions({ rolling: { threshold: 0 } }, defaults))).toBe(true)
    expect(Either.isLeft(Lifetime.fromOptions({ rolling: { threshold: 1.5 } }, defaults))).toBe(true)
    expect(lifetime({ rolling: { threshold: 1 } }).threshold).toBe(1)
  })

  it.prop(
    "the deadline is the earliest of the expiry, the idle deadline and the absolute deadline",
    [time, time, time, span, span],
    ([createdAt, lastSeenAt, extendedUntil, idleTimeout, absoluteLifetime]) => {
      const limits = lifetime({ idleTimeout, absoluteLifetime })
      const deadline = Lifetime.deadline(limits, { createdAt, lastSeenAt, extendedUntil })
      const candidates = [
        extendedUntil,
        ...(idleTimeout === undefined ? [] : [lastSeenAt + idleTimeout]),
        ...(absoluteLifetime === undefined ? [] : [createdAt + absoluteLifetime])
      ]
      expect(deadline).toBe(Math.min(...candidates))
      const entry = makeEntry({ createdAt, lastSeenAt, extendedUntil, expiresAt: extendedUntil + 1 })
      expect(Lifetime.isDead(limits, entry, deadline)).toBe(true)
      if (deadline > 0 && deadline - 1 < entry.expiresAt) {
        expect(Lifetime.isDead(limits, entry, deadline - 1)).toBe(false)
      }
    }
  )

  it.prop(
    "a use is recorded only below the threshold of the life (rolling) or of the idle window left",
    [fc.integer({ min: 1_000, max: 10_000_000 }), fc.double({ min: 0.01, max: 1, noNaN: true }), time, time],
    ([ttl, threshold, lastSeenAt, extendedUntil]) => {
      const now = Math.max(lastSeenAt, 1)
      const rolling = lifetime({ ttl, rolling: { threshold } })
      const entry = makeEntry({ lastSeenAt, extendedUntil, expiresAt: extendedUntil })
      const due = Lifetime.dueOnUse(rolling, entry, now)
      expect(due === undefined ? undefined : due.roll).toBe(extendedUntil - now < threshold * ttl ? true : undefined)
      const idle = lifetime({ ttl, idleTimeout: ttl, rolling: false })
      const seen = Lifetime.dueOnUse(idle, entry, now)
      expect(seen === undefined ? undefined : seen.roll).toBe(lastSeenAt + ttl - now < 0.5 * ttl ? false : undefined)
      expect(Lifetime.dueOnUse(lifetime({ ttl }), entry, now)).toBeUndefined()
    }
  )
})
