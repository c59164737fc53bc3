/**
 * The writes of the sessions service: issue, and every change of a stored session by compare-and-set
 * (extend, update, renewal of the id, the record of a use).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import type { Conflict, Expired, Issued, IssueOptions, NotFound, Session } from "../Session.js"
import type { Entry, Key, StoreError } from "../Store.js"
import { type Core, partsOf, toSession } from "./core.js"
import { lineageKey, newFamily, newSecret, secretDigest, tagLength } from "./ids.js"
import * as Lifetime from "./lifetime.js"
import { metrics } from "./metrics.js"

/** The longest user id the service issues a session for (`Session.maxUserIdLength`). */
export const maxUserIdLength = 1_024

// The longest `User-Agent` and address kept of a client.
const maxClientInfoLength = 512

// Compare-and-set attempts before a write gives up with `Conflict`. Writers of one session in one process
// queue (lock.ts), so losing happens only to writers in other processes; between attempts a writer backs
// off for a random time of up to `2^attempt` milliseconds (at most 50), on the live clock: the delay
// paces a real store, whatever clock the session times come from.
const maxAttempts = 10
const liveClock = Clock.make()
const backoff = (attempt: number) =>
  Effect.withClock(
    Effect.sleep(Duration.millis(Crypto.randomInt(1, Math.min(50, 2 ** attempt) + 1))),
    liveClock
  )

export const count = <A>(core: Core<A>, metric: Metric.Metric.Counter<number>): Effect.Effect<void> =>
  core.observe ? Metric.increment(metric) : Effect.void

const newEntry = <A>(
  core: Core<A>,
  userId: string,
  now: number,
  encoded: unknown,
  secret: string,
  client: IssueOptions | undefined,
  ttl: number | undefined
): Entry => {
  const entry = {
    version: 0,
    userId,
    createdAt: now,
    renewedAt: now,
    extendedUntil: now + (ttl ?? core.lifetime.ttlMillis),
    lastSeenAt: now,
    secret,
    previous: undefined,
    previousUntil: 0,
    // bounded, like the data, so that an entry never outgrows `Store.maxEncodedLength`
    userAgent: client?.userAgent?.slice(0, maxClientInfoLength),
    address: client?.address?.slice(0, maxClientInfoLength),
    ttl,
    persistent: client?.persistent ?? true,
    data: encoded
  }
  return { ...entry, expiresAt: Lifetime.deadline(core.lifetime, entry) }
}

export const issue = <A>(
  core: Core<A>,
  userId: string,
  data: A,
  options: IssueOptions | undefined
): Effect.Effect<Issued<A>, StoreError> =>
  Effect.gen(function*() {
    if (userId.length > maxUserIdLength) {
      return yield* Effect.dieMessage(`a user id is at most ${maxUserIdLength} characters long`)
    }
    // Like the user id, the lifetime is the application's choice, not the client's: a bad one is a defect.
    const ttl = options?.ttl === undefined ? Either.right(undefined) : Lifetime.sessionTtl(options.ttl)
    if (Either.isLeft(ttl)) return yield* Effect.dieMessage(ttl.left)
    const encoded = yield* core.codec.encode(data)
    const now = yield* Clock.currentTimeMillis
    const family = newFamily()
    const secret = newSecret()
    const id = core.auth.fingerprint(userId, core.domain)[0]! + family + secret
    const key: Key = { user: id.slice(0, tagLength), session: lineageKey(family) }
    const digest = secretDigest(secret)
    const entry = newEntry(core, userId, now, encoded, digest, options, ttl.right)
    // 128 random bits of lineage do not collide; a refused create means the store or its contract is broken.
    if (!(yield* core.store.save(key, entry, "create", { maxPerUser: core.maxPerUser, now }))) {
      return yield* Effect.dieMessage("session id collision")
    }
    const stored = core.codec.decoded(entry)
    if (Either.isLeft(stored)) return yield* Effect.die(stored.left)
    yield* count(core, metrics.issued)
    const session = toSession(core, Redacted.make(id), key, entry, stored.right, digest)
    return { session, token: core.auth.sign(id, core.domain) }
  })

const fetchLive = <A>(core: Core<A>, key: Key): Effect.Effect<Entry, NotFound | Expired | StoreError> =>
  Effect.flatMap(core.store.fetch(key), (entry): Effect.Effect<Entry, NotFound | Expired> =>
    Option.isNone(entry)
      ? Effect.fail(core.refusals.notFound)
      : Effect.flatMap(
        Clock.currentTimeMillis,
        (now): Effect.Effect<Entry, Expired> =>
          Lifetime.isDead(core.lifetime, entry.value, now)
            ? Effect.fail(core.refusals.expired)
            : Effect.succeed(entry.value)
      ))

/**
 * Writes `change(latest entry)` by compare-and-set, starting from the newest entry known for the session
 * (the one it was read as, or the last one written in this process) and re-reading after a lost race.
 * Only the session's current id writes: an id that was renewed meanwhile, or one read in its grace, fails
 * with `NotFound`. `change` sees the entry and the time, and answers the entry's next state (the version
 * and the deadline are set here).
 */
export const modify = <A>(
  core: Core<A>,
  session: Session<A>,
  change: (entry: Entry, now: number) => Effect.Effect<Entry, NotFound>
): Effect.Effect<Entry, NotFound | Expired | Conflict | StoreError> =>
  Effect.suspend(() => {
    const seen = core.known.get(session)
    if (seen !== undefined && !seen.current) return Effect.fail(core.refusals.notFound)
    const secret = seen?.secret ?? partsOf(session)?.digest
    if (secret === undefined) return Effect.fail(core.refusals.notFound)
    return core.writers.with(`${session.key.user}.${session.key.session}`, (slot) =>
      Effect.gen(function*() {
        for (let attempt = 0; attempt < maxAttempts; attempt++) {
          if (attempt > 1) yield* backoff(attempt)
          const now = yield* Clock.currentTimeMillis
          let current: Entry | undefined
          if (attempt === 0) {
            const latest = slot.latest
            const candidate = latest !== undefined && (seen === undefined || latest.version > seen.entry.version)
              ? latest
              : seen?.entry
            // A copy still good saves a read; only the store decides that a session is gone or expired
            // (another request may have extended it since).
            if (candidate !== undefined && !Lifetime.isDead(core.lifetime, candidate, now)) current = candidate
          }
          if (current === undefined) current = yield* fetchLive(core, session.key)
          if (current.secret !== secret) return yield* core.refusals.notFound
          const changed = yield* change(current, now)
          const next: Entry = {
            ...changed,
            version: current.version + 1,
            expiresAt: Lifetime.deadline(core.lifetime, changed)
          }
          if (yield* core.store.save(session.key, next, "update")) {
            slot.latest = next
            return next
          }
        }
        return yield* core.refusals.conflict
      }))
  })

/**
 * Gives the session's lineage a new secret by compare-and-set: the lineage is one entry, so a revocation
 * either lands first (the write fails) or deletes the new id with the old one. The replaced id keeps
 * reading for `graceMillis`.
 */
export const renewId = <A>(
  core: Core<A>,
  session: Session<A>,
  graceMillis: number
): Effect.Effect<Issued<A>, NotFound | Expired | Conflict | StoreError> =>
  Effect.gen(function*() {
    const parts = partsOf(session)
    if (parts === undefined) return yield* core.refusals.notFound
    const secret = newSecret()
    const digest = secretDigest(secret)
    const entry = yield* modify(core, session, (latest, now) =>
      Effect.succeed({
        ...latest,
        renewedAt: now,
        lastSeenAt: now,
        secret: digest,
        previous: graceMillis > 0 ? latest.secret : undefined,
        previousUntil: graceMillis > 0 ? now + graceMillis : 0
      }))
    const data = core.codec.decoded(entry)
    if (Either.isLeft(data)) return yield* core.refusals.notFound
    const id = parts.tag + parts.family + secret
    yield* count(core, metrics.rotated)
    return {
      session: toSession(core, Redacted.make(id), session.key, entry, data.right, digest),
      token: core.auth.sign(id, core.domain)
    }
  })

/**
 * Records a use when a limit needs it (`Lifetime.dueOnUse`), answering the session as written, or
 * `undefined` when another request wrote (or renewed) it first. `undefined` instead of an effect: nothing
 * to write.
 */
export const touch = <A>(
  core: Core<A>,
  session: Session<A>,
  entry: Entry,
  now: number
): Effect.Effect<Session<A> | undefined, Expired | StoreError> | undefined => {
  const due = Lifetime.dueOnUse(core.lifetime, entry, now)
  if (due === undefined) return undefined
  return modify(core, session, (latest) =>
    Effect.succeed({
      ...latest,
      lastSeenAt: now,
      extendedUntil: due.roll
        ? Math.max(latest.extendedUntil, now + Lifetime.ttlOf(core.lifetime, latest))
        : latest.extendedUntil
    })).pipe(
      Effect.map((written): Session<A> | undefined =>
        toSession(core, session.id, session.key, written, session.data, written.secret)
      ),
      Effect.tap(() => count(core, metrics.refreshed)),
      // Losing the race means another request just wrote (or renewed) this session: nothing to record.
      Effect.catchTag("Conflict", "NotFound", () => Effect.succeed(undefined))
    )
}

export const extend = <A>(
  core: Core<A>,
  session: Session<A>
): Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError> =>
  Effect.map(
    modify(core, session, (latest, now) =>
      Effect.succeed({ ...latest, lastSeenAt: now, extendedUntil: now + Lifetime.ttlOf(core.lifetime, latest) })),
    (entry) => {
      const data = core.codec.decoded(entry)
      const value = Either.isRight(data) ? data.right : session.data
      return toSession(core, session.id, session.key, entry, value, entry.secret)
    }
  )

export const update = <A>(
  core: Core<A>,
  session: Session<A>,
  f: (data: A) => A
): Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError> =>
  Effect.gen(function*() {
    const entry = yield* modify(core, session, (latest) => {
      const current = core.codec.decode(latest.data)
      // The stored data no longer decodes: there is nothing valid to update.
      if (Either.isLeft(current)) return Effect.fail(core.refusals.notFound)
      return Effect.map(core.codec.encode(f(current.right)), (encoded) => ({ ...latest, data: encoded }))
    })
    const data = core.codec.decoded(entry)
    if (Either.isLeft(data)) return yield* Effect.die(data.left)
    return toSession(core, session.id, session.key, entry, data.right, entry.secret)
  })
