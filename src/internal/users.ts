/**
 * What the service does with a user's sessions as a whole or by name: list them, and end them (logout,
 * revoke one, log out everywhere, log out the other devices).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { Session, SessionInfo } from "../Session.js"
import type { StoreError } from "../Store.js"
import { type Core, toInfo, userTags } from "./core.js"
import { freezeData } from "./freeze.js"
import * as Lifetime from "./lifetime.js"

/**
 * Whether a session object may revoke: one read through an id in its renewal grace reads, but never
 * revokes (it could otherwise end its own successor). One read through the current id may, even after a
 * renewal since (a logout racing a renewal still ends the session); so may one this service did not make
 * (the application's own).
 */
const mayRevoke = <A>(core: Core<A>, session: Session<A>) => core.known.get(session)?.current ?? true

export const clear = <A>(core: Core<A>, session: Session<A>): Effect.Effect<void, StoreError> =>
  mayRevoke(core, session) ? core.store.delete(session.key) : Effect.void

export const list = <A>(core: Core<A>, userId: string): Effect.Effect<ReadonlyArray<SessionInfo<A>>, StoreError> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const sessions: Array<SessionInfo<A>> = []
    for (const tag of userTags(core, userId)) {
      for (const { entry, key } of yield* core.store.list(tag, now)) {
        if (entry.userId !== userId || Lifetime.isDead(core.lifetime, entry, now)) continue
        const data = core.codec.decode(entry.data)
        if (Either.isRight(data)) {
          freezeData(data.right)
          sessions.push(Object.freeze(toInfo(key, entry, data.right, core.lifetime.ttl)))
        }
      }
    }
    return sessions.sort((a, b) => a.createdAt.epochMillis - b.createdAt.epochMillis)
  })

export const revoke = <A>(core: Core<A>, userId: string, session: string): Effect.Effect<void, StoreError> =>
  Effect.forEach(userTags(core, userId), (tag) => core.store.delete({ user: tag, session }), { discard: true })

export const clearAll = <A>(core: Core<A>, userId: string): Effect.Effect<number, StoreError> =>
  deleteAll(core, userId, undefined)

export const clearOthers = <A>(core: Core<A>, session: Session<A>): Effect.Effect<number, StoreError> =>
  mayRevoke(core, session) ? deleteAll(core, session.userId, session) : Effect.succeed(0)

// Every session of the user, under every tag, but `except`.
const deleteAll = <A>(core: Core<A>, userId: string, except: Session<A> | undefined) =>
  Effect.reduce(
    userTags(core, userId),
    0,
    (deleted, tag) =>
      Effect.map(
        core.store.deleteUser(tag, except !== undefined && tag === except.key.user ? except.key.session : undefined),
        (n) => deleted + n
      )
  )
