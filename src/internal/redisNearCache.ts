/**
 * The Redis store's near-cache: the raw values of sessions held in process memory, invalidated by Redis
 * (server-assisted client-side caching, `CLIENT TRACKING`), not merely time-limited.
 *
 * ioredis has no client-side caching and drops RESP3 `invalidate` pushes, so this uses RESP2's
 * two-connection mode: a connection of its own (`protocol: 2`) subscribes to `__redis__:invalidate`, and
 * the data connection runs `CLIENT TRACKING ON REDIRECT <that connection's id>`. Redis then remembers
 * which keys the data connection read and publishes a key's name on the invalidation connection when
 * anyone writes, deletes or expires it (or a null for a flush). A user's sessions are one hash, so an
 * invalidation drops every cached session of that user.
 *
 * - Default tracking mode (neither OPTIN nor BCAST): every read of the data connection is tracked, with
 *   no extra command. OPTIN needs `CLIENT CACHING yes` right before each cached read on the same
 *   connection, which auto-pipelining would have to be kept from splitting, for one more command per
 *   miss; BCAST sends every instance the invalidation of every write under the prefix (every login and
 *   extend), read or not. The server's tracking table holds the keys read; when it overflows
 *   (`tracking-table-max-keys`) Redis invalidates the keys it forgets, so a full table costs hits, never
 *   correctness. See bench/RESULTS.md for the measured costs.
 * - An invalidation can overtake the reply of the read it concerns (the two come on two connections): a
 *   read puts a placeholder in its slot when it is sent, and its reply is kept only if the placeholder
 *   is still there. Every drop removes placeholders with the entries.
 * - The cache is flushed and bypassed whenever either connection closes, until tracking is on again on
 *   the data connection, redirected to the invalidation connection's current id (both are re-established
 *   on every reconnection). A heartbeat PINGs the invalidation connection and reads `CLIENT
 *   TRACKINGINFO` on the data connection (the only place RESP2 shows a broken redirect): a silent loss
 *   or a broken redirect flushes the cache too.
 * - Every entry also has a maximum age, by the reading fiber's `Clock`.
 * - The store's own writes drop the user's entries themselves, before they are sent and again when they
 *   are answered (read-your-writes, whatever the invalidation's timing).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Redis } from "ioredis"
import type { Key, StoreError, StringBackend } from "../Store.js"
import * as Peek from "./peek.js"
import { classify, type Failure } from "./redisErrors.js"

/** How the near-cache is set up. */
export interface Settings {
  /** The most sessions kept; the least recently read users are dropped first. */
  readonly capacity: number
  /** The longest an entry is answered from memory, in milliseconds. */
  readonly maxAgeMillis: number
  /** How often the heartbeat checks the invalidation connection and the redirect, in milliseconds. */
  readonly heartbeatMillis: number
  /**
   * The user whose hash a Redis key names, as the backend names it (`undefined` for any other key): the
   * cache is keyed by user, so that a hit builds no key, and an invalidation names the hash.
   */
  readonly userOf: (key: string) => string | undefined
}

// -----------------------------------------------------------------------------
// metrics
// -----------------------------------------------------------------------------

const counter = (name: string, description: string) =>
  Metric.counter(`effect_sessions_near_cache_${name}_total`, { description, incremental: true })

/** The near-cache's counters. */
export const metrics = {
  hits: counter("hits", "Session reads answered from the near-cache"),
  misses: counter("misses", "Session reads the near-cache sent to Redis"),
  invalidations: counter("invalidations", "Keys Redis invalidated (a user's hash each)"),
  flushes: counter("flushes", "Times the near-cache was emptied, by reason"),
  bypassed: counter("bypassed", "Session reads sent to Redis while the near-cache was off (tracking not established)")
} as const

/** Why the cache was emptied. */
export type FlushReason = "flushall" | "disconnect" | "broken_redirect" | "heartbeat"

const noTags: ReadonlyArray<never> = []
const flushLabels: Record<FlushReason, ReadonlyArray<MetricLabel.MetricLabel>> = {
  flushall: [MetricLabel.make("reason", "flushall")],
  disconnect: [MetricLabel.make("reason", "disconnect")],
  broken_redirect: [MetricLabel.make("reason", "broken_redirect")],
  heartbeat: [MetricLabel.make("reason", "heartbeat")]
}

// -----------------------------------------------------------------------------
// the entries
// -----------------------------------------------------------------------------

/**
 * One session of a user in the cache: a read sent and not answered yet (`value` undefined), whose reply
 * is kept only while this very object is in the user's list, or a value Redis answered and when (by the
 * reading fiber's clock). A user's slots are a short linked list rather than a `Map`: most users have one
 * or two sessions, and a `Map` would cost more than the session itself.
 */
interface Slot {
  readonly session: string
  value: string | undefined
  storedAt: number
  next: Slot | undefined
}

/**
 * A user's slots, and the user's place in the list of users by their last read (least recent first). A
 * list of its own rather than the order of the map: a hit moves the user by a few pointers (nothing at
 * all when it is already last) instead of deleting it from the map and adding it again.
 */
interface Bucket {
  readonly user: string
  first: Slot | undefined
  newer: Bucket | undefined
  older: Bucket | undefined
}

const invalidationChannel = "__redis__:invalidate"

/** The cache and its tracking state. */
export interface NearCache {
  /** The backend with its `fetch` answered from memory when it can, its writes dropping what they touch. */
  readonly wrap: (backend: StringBackend) => StringBackend
}

/**
 * The near-cache on `data` (the store's connection) and `invalidation` (a RESP2 connection of its own,
 * not subscribed yet). Tracking is established before this answers (or it fails); the heartbeat runs
 * until the scope closes.
 */
export const make = (
  settings: Settings,
  data: Redis,
  invalidation: Redis
): Effect.Effect<NearCache, Failure, Scope.Scope> =>
  Effect.gen(function*() {
    const state = makeState(settings, data, invalidation)
    yield* Effect.tryPromise({
      try: () => state.establish(),
      catch: (cause) => classify("CLIENT TRACKING (near-cache)", cause, undefined)
    })
    if (!state.isOn()) {
      return yield* Effect.fail<Failure>({
        reason: "Unavailable",
        message: "Redis near-cache: tracking could not be established (a connection closed meanwhile)"
      })
    }
    yield* Effect.addFinalizer(() => Effect.sync(state.stop))
    yield* Effect.promise(() => state.heartbeat()).pipe(
      Effect.repeat(Schedule.spaced(Duration.millis(settings.heartbeatMillis))),
      Effect.forkScoped
    )
    return { wrap: (backend) => wrap(state, backend) }
  })

type State = ReturnType<typeof makeState>

const makeState = (settings: Settings, data: Redis, invalidation: Redis) => {
  // user → the user's slots; `oldest` and `newest` are the ends of the users' list by last read
  const users = new Map<string, Bucket>()
  let oldest: Bucket | undefined
  let newest: Bucket | undefined
  let size = 0
  let on = false
  // bumped whenever the cache goes off: an establishment begun before then must not turn it on
  let generation = 0
  let invalidationId: string | undefined
  // bumped whenever the invalidation connection closes: its id and subscription are gone with it
  let invalidationEpoch = 0
  let establishing: Promise<void> | undefined
  let again = false
  let stopped = false

  const unlink = (bucket: Bucket) => {
    if (bucket.older === undefined) oldest = bucket.newer
    else bucket.older.newer = bucket.newer
    if (bucket.newer === undefined) newest = bucket.older
    else bucket.newer.older = bucket.older
    bucket.newer = bucket.older = undefined
  }

  const append = (bucket: Bucket) => {
    bucket.older = newest
    if (newest === undefined) oldest = bucket
    else newest.newer = bucket
    newest = bucket
  }

  /** The user read last. */
  const touch = (bucket: Bucket) => {
    if (bucket === newest) return
    unlink(bucket)
    append(bucket)
  }

  const dropUser = (user: string) => {
    const bucket = users.get(user)
    if (bucket === undefined) return
    for (let slot = bucket.first; slot !== undefined; slot = slot.next) size--
    users.delete(user)
    unlink(bucket)
  }

  const clear = () => {
    users.clear()
    oldest = newest = undefined
    size = 0
  }

  const find = (bucket: Bucket | undefined, session: string): Slot | undefined => {
    let slot = bucket?.first
    while (slot !== undefined && slot.session !== session) slot = slot.next
    return slot
  }

  const remove = (user: string, session: string) => {
    const bucket = users.get(user)
    if (bucket === undefined) return
    let previous: Slot | undefined
    for (let slot = bucket.first; slot !== undefined; previous = slot, slot = slot.next) {
      if (slot.session !== session) continue
      size--
      if (previous !== undefined) previous.next = slot.next
      else if (slot.next !== undefined) bucket.first = slot.next
      else {
        users.delete(user)
        unlink(bucket)
      }
      return
    }
  }

  const flush = (reason: FlushReason) => {
    clear()
    metrics.flushes.unsafeUpdate(1, flushLabels[reason])
  }

  /** Off until tracking is established again: flushed, and every read goes to Redis. */
  const off = (reason: FlushReason) => {
    generation++
    if (on) {
      on = false
      flush(reason)
    }
  }

  const onInvalidation = (channel: Buffer, message: unknown) => {
    if (channel.toString() !== invalidationChannel) return
    if (message === null || message === undefined) {
      flush("flushall")
      return
    }
    const keys = Array.isArray(message) ? message : [message]
    for (const key of keys) {
      const user = settings.userOf(Buffer.isBuffer(key) ? key.toString("utf8") : String(key))
      if (user !== undefined) dropUser(user)
    }
    metrics.invalidations.unsafeUpdate(keys.length, noTags)
  }

  const onInvalidationClosed = () => {
    invalidationEpoch++
    invalidationId = undefined
    off("disconnect")
  }
  const onDataClosed = () => off("disconnect")
  const onReady = () => {
    void establish().catch(() => {})
  }

  invalidation.on("messageBuffer", onInvalidation)
  invalidation.on("close", onInvalidationClosed)
  invalidation.on("ready", onReady)
  data.on("close", onDataClosed)
  data.on("ready", onReady)

  const establishOnce = async () => {
    const started = generation
    if (stopped || data.status !== "ready" || invalidation.status !== "ready") return
    if (invalidationId === undefined) {
      const epoch = invalidationEpoch
      // CLIENT ID before SUBSCRIBE: a RESP2 subscriber answers nothing else
      const id = String(await invalidation.client("ID"))
      await invalidation.subscribe(invalidationChannel)
      if (epoch !== invalidationEpoch) return
      invalidationId = id
    }
    await data.call("CLIENT", "TRACKING", "ON", "REDIRECT", invalidationId)
    if (started === generation && !stopped) on = true
  }

  /** Establishes tracking, once at a time (a call while one runs makes it run again after). */
  const establish = (): Promise<void> => {
    if (establishing !== undefined) {
      again = true
      return establishing
    }
    const run = async (): Promise<void> => {
      try {
        do {
          again = false
          await establishOnce()
        } while (again && !on)
      } finally {
        establishing = undefined
      }
    }
    establishing = run()
    return establishing
  }

  // Both checks act as soon as they answer: a broken redirect shows in TRACKINGINFO at once, while a PING
  // into a silently dead connection only fails after the command timeout.
  const heartbeat = async (): Promise<void> => {
    if (stopped) return
    if (!on) return establish().catch(() => {})
    const started = generation
    const redirect = data.call("CLIENT", "TRACKINGINFO").then(
      (info) => {
        if (started === generation && !trackingHolds(info, invalidationId)) off("broken_redirect")
      },
      () => {
        if (started === generation) off("heartbeat")
      }
    )
    const pong = invalidation.ping().then(
      () => {},
      () => {
        if (started !== generation && invalidationId === undefined) return
        // a silent loss: reconnect, which establishes tracking again once ready
        invalidationId = undefined
        off("heartbeat")
        invalidation.disconnect(true)
      }
    )
    await Promise.all([redirect, pong])
    if (!on) await establish().catch(() => {})
  }

  const stop = () => {
    stopped = true
    on = false
    clear()
    invalidation.off("messageBuffer", onInvalidation)
    invalidation.off("close", onInvalidationClosed)
    invalidation.off("ready", onReady)
    data.off("close", onDataClosed)
    data.off("ready", onReady)
  }

  /** The value cached for `session` of `user`, if it is younger than `maxAge`. */
  const lookup = (user: string, session: string, now: number): string | undefined => {
    const bucket = users.get(user)
    const slot = find(bucket, session)
    if (slot === undefined || slot.value === undefined) return undefined
    if (now - slot.storedAt >= settings.maxAgeMillis || now < slot.storedAt) {
      remove(user, session)
      return undefined
    }
    touch(bucket!)
    return slot.value
  }

  /** A placeholder for a read about to be sent, in place of whatever the session's slot held. */
  const reserve = (user: string, session: string): Slot => {
    remove(user, session)
    const bucket = users.get(user)
    const pending: Slot = { session, value: undefined, storedAt: 0, next: bucket?.first }
    if (bucket === undefined) {
      const added: Bucket = { user, first: pending, newer: undefined, older: undefined }
      users.set(user, added)
      append(added)
    } else {
      bucket.first = pending
      touch(bucket)
    }
    size++
    while (size > settings.capacity && oldest !== undefined) dropUser(oldest.user)
    return pending
  }

  /** Keeps the reply of the read `pending` stands for, if its placeholder is still there. */
  const settle = (user: string, pending: Slot, value: string | undefined, now: number) => {
    if (find(users.get(user), pending.session) !== pending) return
    if (value === undefined) {
      remove(user, pending.session)
    } else {
      pending.value = value
      pending.storedAt = now
    }
  }

  const release = (user: string, pending: Slot) => settle(user, pending, undefined, 0)

  return {
    isOn: () => on,
    establish,
    heartbeat,
    stop,
    lookup,
    reserve,
    settle,
    release,
    dropUser
  }
}

/** Whether `CLIENT TRACKINGINFO` says tracking is on and redirected to `id`, unbroken. */
const trackingHolds = (reply: unknown, id: string | undefined): boolean => {
  if (id === undefined) return false
  const fields = new Map<string, unknown>()
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), reply[i + 1])
  } else if (reply instanceof Map) {
    for (const [key, value] of reply) fields.set(String(key), value)
  } else if (typeof reply === "object" && reply !== null) {
    for (const [key, value] of Object.entries(reply)) fields.set(key, value)
  }
  const flags = fields.get("flags")
  const list = Array.isArray(flags) ? flags.map(String) : typeof flags === "string" ? [flags] : []
  return list.includes("on") && !list.includes("broken_redirect") && String(fields.get("redirect")) === id
}

// -----------------------------------------------------------------------------
// the backend with the cache in front
// -----------------------------------------------------------------------------

/** Runs `write` with the user's entries dropped before it is sent and again once it is answered. */
const dropping = <A, E>(state: State, user: string, write: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.suspend(() => {
    state.dropUser(user)
    return Effect.ensuring(write, Effect.sync(() => state.dropUser(user)))
  })

const wrap = (state: State, backend: StringBackend): StringBackend =>
  Peek.registerString(wrapped(state, backend), (key, now) => {
    // a hit is answered on the reading fiber; a miss or a bypassed read goes on to `fetch`, which counts it
    if (!state.isOn()) return undefined
    const cached = state.lookup(key.user, key.session, now)
    if (cached !== undefined) metrics.hits.unsafeUpdate(1, noTags)
    return cached
  })

const wrapped = (state: State, backend: StringBackend): StringBackend => ({
  fetch: <A>(key: Key, decode: (value: string | undefined) => A) =>
    Effect.withFiberRuntime<A, StoreError>((fiber) => {
      if (!state.isOn()) {
        metrics.bypassed.unsafeUpdate(1, noTags)
        return backend.fetch(key, decode)
      }
      const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
      const cached = state.lookup(key.user, key.session, clock.unsafeCurrentTimeMillis())
      if (cached !== undefined) {
        metrics.hits.unsafeUpdate(1, noTags)
        return Effect.succeed(decode(cached))
      }
      metrics.misses.unsafeUpdate(1, noTags)
      const pending = state.reserve(key.user, key.session)
      return Effect.onError(
        backend.fetch(key, (value) => {
          state.settle(key.user, pending, value, clock.unsafeCurrentTimeMillis())
          return decode(value)
        }),
        () => Effect.sync(() => state.release(key.user, pending))
      )
    }),
  save: (key, value, entry, mode, cap) => dropping(state, key.user, backend.save(key, value, entry, mode, cap)),
  delete: (key) => dropping(state, key.user, backend.delete(key)),
  deleteUser: (user, except) => dropping(state, user, backend.deleteUser(user, except)),
  list: backend.list
})
