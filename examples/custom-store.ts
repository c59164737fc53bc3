/**
 * A complete third-party store on a plain `Map`, against the public port only (`effect-sessions/Store`):
 * `Store.make` takes the backend and derives the rest. test/examples/custom-store.test.ts runs the shipped
 * contract suite (`effect-sessions/testing/StoreContract`) against it.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Store from "../src/Store.js"

const retention = Duration.toMillis(Store.expiredRetention)
type Sessions = Map<string, Store.Entry>

/** A backend over a `Map` of users to their sessions, expiring by `clock` (Effect's `Clock` by default). */
export const backend = (clock: Effect.Effect<number> = Clock.currentTimeMillis): Store.Backend => {
  const users = new Map<string, Sessions>()
  // One synchronous step per operation (atomic): the user's sessions at `now`, dropping the forgotten ones.
  const at = <A>(user: string, f: (sessions: Sessions, now: number) => A) =>
    Effect.map(clock, (now) => {
      const sessions: Sessions = users.get(user) ?? new Map()
      for (const [id, entry] of sessions) if (entry.expiresAt + retention <= now) sessions.delete(id)
      users.set(user, sessions)
      const answer = f(sessions, now)
      if (sessions.size === 0) users.delete(user)
      return answer
    })
  return {
    fetch: (key) => at(key.user, (sessions) => Option.fromNullable(sessions.get(key.session))),
    save: (key, entry, mode, cap) =>
      at(key.user, (sessions) => {
        const current = sessions.get(key.session)
        if (mode === "create" ? current !== undefined : current?.version !== entry.version - 1) return false
        if (mode === "create" && cap !== undefined) {
          const live = [...sessions].filter(([, e]) => e.expiresAt > cap.now)
            .sort(([, a], [, b]) => a.lastSeenAt - b.lastSeenAt || a.createdAt - b.createdAt)
          for (const [id] of live.slice(0, Math.max(0, live.length - cap.maxPerUser + 1))) sessions.delete(id)
        }
        sessions.set(key.session, entry)
        return true
      }),
    delete: (key) => at(key.user, (sessions) => void sessions.delete(key.session)),
    list: (user) =>
      at(user, (sessions) => Array.from(sessions, ([session, entry]) => ({ key: { user, session }, entry }))),
    deleteUser: (user, except) =>
      at(user, (sessions, now) => {
        let live = 0
        for (const [id, entry] of sessions) {
          if (id !== except && sessions.delete(id) && entry.expiresAt > now) live++
        }
        return live
      })
  }
}

/** The store, a new `Map` per layer build. */
export const layer: Layer.Layer<Store.Store> = Layer.sync(Store.Store, () => Store.make(backend()))
