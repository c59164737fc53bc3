/**
 * The data the contract cases write: random keys in the alphabet of real ones, complete entries, and the
 * helpers that save and read them back.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Crypto from "node:crypto"
import * as Store from "../../Store.js"
import * as Assert from "./assert.js"

/** 2100-01-01 (UTC), in milliseconds: an expiry no backend reaches during a run. */
export const farFuture = Date.UTC(2100, 0, 1)
/** 2101-01-01 (UTC), in milliseconds. */
export const fartherFuture = Date.UTC(2101, 0, 1)

/** 128 random bits, base64url: the alphabet of both parts of a real key. */
export const randomPart = () => Crypto.randomBytes(16).toString("base64url")

// A leading letter guarantees that swapping case yields a different part.
export const newUser = () => `u${randomPart()}`
export const newKey = (user: string = newUser()): Store.Key => ({ user, session: `s${randomPart()}` })
export const swapCase = (part: string) => part === part.toLowerCase() ? part.toUpperCase() : part.toLowerCase()

/**
 * A complete entry (version 0) for tests that write to a store directly: sensible values for every field,
 * overridden by what the test cares about.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const makeEntry = (fields: Partial<Store.Entry> & Pick<Store.Entry, "expiresAt">): Store.Entry => ({
  version: 0,
  userId: "user",
  createdAt: 0,
  renewedAt: fields.createdAt ?? 0,
  extendedUntil: fields.expiresAt,
  lastSeenAt: fields.createdAt ?? 0,
  secret: "c2VjcmV0LWRpZ2VzdC1vZi10aGUtaWQ",
  previous: undefined,
  previousUntil: 0,
  userAgent: undefined,
  address: undefined,
  ttl: undefined,
  persistent: true,
  data: null,
  ...fields
})

/**
 * `entry` changed by `fields` as a store "update" of it must be: with the next version, the one the
 * compare-and-set expects after `entry`.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const nextVersion = (entry: Store.Entry, fields: Partial<Omit<Store.Entry, "version">> = {}): Store.Entry => ({
  ...entry,
  ...fields,
  version: entry.version + 1
})

/** A new session's entry (version 0) expiring far in the future, unique by its user id and data. */
export const newEntry = (overrides: Partial<Store.Entry> = {}): Store.Entry =>
  makeEntry({
    userId: `user-${Crypto.randomBytes(6).toString("hex")}`,
    createdAt: farFuture - 60_000,
    expiresAt: farFuture,
    data: { csrf: randomPart() },
    ...overrides
  })

/** A new session of `user`, with the entry `entry` (by default a new one). */
export const session = (user: string, entry: Store.Entry = newEntry()): Store.Listed => ({ key: newKey(user), entry })

/** `count` new sessions of `user`, the i-th with the entry `entry(i)` (by default a new one). */
export const sessionsOf = (
  user: string,
  count: number,
  entry: (i: number) => Store.Entry = () => newEntry()
): Array<Store.Listed> => Array.from({ length: count }, (_, i) => ({ key: newKey(user), entry: entry(i) }))

/**
 * Sessions of the users next to `user`: its user part with the case swapped, with a suffix, without its last
 * character, and another user with the session part `session`; each with the entry `entry()`.
 */
export const neighbours = (
  user: string,
  session: string,
  entry: () => Store.Entry = () => newEntry()
): Array<Store.Listed> =>
  [newKey(swapCase(user)), newKey(`${user}x`), newKey(user.slice(0, -1)), { user: newUser(), session }].map((key) => ({
    key,
    entry: entry()
  }))

/** `list` answers in no particular order: compare by session part. */
export const bySession = (listed: ReadonlyArray<Store.Listed>): Array<Store.Listed> =>
  [...listed].sort((a, b) => a.key.session < b.key.session ? -1 : a.key.session > b.key.session ? 1 : 0)

export const sessions = (listed: ReadonlyArray<Store.Listed>) => listed.map(({ key }) => key.session).sort()

export const shuffle = <A>(items: ReadonlyArray<A>): Array<A> => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Crypto.randomInt(i + 1)
    const item = out[i]!
    out[i] = out[j]!
    out[j] = item
  }
  return out
}

/** Saves entries with "create" and checks that each was written. */
export const create = (store: Store.StoreService, writes: ReadonlyArray<Store.Listed>) =>
  Effect.forEach(
    writes,
    ({ entry, key }) =>
      Effect.flatMap(store.save(key, entry, "create"), (wrote) => Assert.equal(wrote, true, "create")),
    { discard: true }
  )

/** What `fetch` answers for each key, as listed entries, in key order. */
export const fetchable = (store: Store.StoreService, keys: ReadonlyArray<Store.Key>) =>
  Effect.map(
    Effect.forEach(
      keys,
      (key) => Effect.map(store.fetch(key), Option.map((entry): Store.Listed => ({ key, entry }))),
      { concurrency: 16 }
    ),
    (found) => bySession(found.filter(Option.isSome).map((some) => some.value))
  )

const retention = Duration.toMillis(Store.expiredRetention)

/** An entry that expired a minute before `now`: within `Store.expiredRetention`, so still answered. */
export const expiredAMinuteAgo = (now: number) =>
  newEntry({ createdAt: now - 3_600_000, lastSeenAt: now - 120_000, expiresAt: now - 60_000 })

/** An entry whose `expiresAt + Store.expiredRetention` is `by` ms after `now` (before it, if negative). */
export const forgottenIn = (now: number, by: number) => {
  const expiresAt = now - retention + by
  return newEntry({ createdAt: expiresAt - 3_600_000, lastSeenAt: expiresAt - 60_000, expiresAt })
}
