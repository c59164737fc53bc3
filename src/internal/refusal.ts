/**
 * Which refusals are of a token whose session lives on under a newer id (another request renewed it):
 * the client may already hold the newer token, so the HTTP layer must not tell it to drop its token. The
 * mark travels with the error itself, so every way of reading a token (the middleware's fast path, or a
 * service's `resolve`) carries it.
 *
 * @internal
 */
import * as Cause from "effect/Cause"

const superseded = new WeakSet<object>()

/** Marks `error` as the refusal of a superseded token, and answers it. */
export const markSuperseded = <E extends object>(error: E): E => {
  superseded.add(error)
  return error
}

/**
 * Whether `error` refused a superseded token. An error failed inside a span reaches its handler as a proxy
 * of the instance (carrying the span): the mark is looked up on the instance itself.
 */
export const isSuperseded = (error: unknown): boolean =>
  typeof error === "object" && error !== null && superseded.has(Cause.originalError(error))
