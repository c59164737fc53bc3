/**
 * The HTTP layer's fast path into a sessions service, found by the service object itself rather than
 * through a member of the public interface: a copy of the service (`{ ...sessions, resolve: wrapped }`)
 * is not registered, so the HTTP layer calls that copy's own `resolve`, and a wrapper is never bypassed.
 */
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { Rejected, Resolved, Sessions } from "../Session.js"
import type { StoreError } from "../Store.js"

/** How a read goes on: with the resolved session, or with why there is none. */
export interface ReadContinuation<A, X, E, R> {
  readonly valid: (resolved: Resolved<A>) => Effect.Effect<X, E, R>
  readonly refused: (error: Rejected | StoreError) => Effect.Effect<X, E, R>
}

/**
 * `resolve` run on the caller's fiber and continued by `k`, with no step of its own to match on the
 * result.
 */
export type ResolveWith<A> = <X, E, R>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  token: string,
  k: ReadContinuation<A, X, E, R>
) => Effect.Effect<X, E, R>

const fastPaths = new WeakMap<object, ResolveWith<any>>()

/** Registers `resolveWith` as the fast path of exactly this service object. */
export const register = <A>(sessions: Sessions<A>, resolveWith: ResolveWith<A>): Sessions<A> => {
  fastPaths.set(sessions, resolveWith)
  return sessions
}

/** The fast path of this very service object, if it registered one. */
export const fastPath = <A>(sessions: Sessions<A>): ResolveWith<A> | undefined => fastPaths.get(sessions)
