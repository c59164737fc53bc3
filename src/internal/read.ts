/**
 * The hot path: what every request with a token does. Written as plain code around the one store round
 * trip: check the signature (or find it checked), fetch (timed here rather than by the metrics wrapper),
 * then every check synchronously, with the time read from the fiber's `Clock`. It runs on the caller's
 * fiber and ends in one of the continuation's branches, so that a caller (the HTTP layer) goes on without
 * another step to match on the result. Effects are built only where something is written.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type { Rejected, Resolved, Session } from "../Session.js"
import type { Entry, StoreError } from "../Store.js"
import { type Core, owns, toSession } from "./core.js"
import { freezeData } from "./freeze.js"
import * as Lifetime from "./lifetime.js"
import { account, recordStore } from "./metrics.js"
import type { ReadContinuation } from "./registry.js"
import { check, type Checked, isChecked } from "./verified.js"
import { renewId, touch } from "./write.js"

const decodeFailed = Effect.logWarning("session data does not decode with the session schema; treated as no session")

// For the reads that write (renewal, rolling expiry): the outcome is known once the write is done.
const settle = <A, X>(core: Core<A>, effect: Effect.Effect<X, Rejected | StoreError>) =>
  Effect.onExit(effect, (exit) =>
    Effect.withFiberRuntime<void>((fiber) => {
      if (Exit.isSuccess(exit)) account(fiber, core.observe, "valid")
      else if (exit.cause._tag === "Fail") account(fiber, core.observe, exit.cause.error._tag)
      return Effect.void
    }))

/** Reads `token` on `fiber`, renewing the id when due if `renew`, and goes on with `k`. */
export const readWith = <A, X, E, R>(
  core: Core<A>,
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  token: string,
  renew: boolean,
  k: ReadContinuation<A, X, E, R>
): Effect.Effect<X, E, R> => {
  const checked = check(core, token)
  if (!isChecked(checked)) {
    account(fiber, core.observe, checked._tag)
    return k.refused(checked)
  }
  const start = core.observe ? performance.now() : 0
  // A store that holds the entry in this process answers on this fiber: no effect, no step.
  const peeked = core.peek === undefined ? undefined : core.peek(checked.key, checked.entry, fiber)
  if (peeked !== undefined) {
    if (core.observe) recordStore("fetch", start, false)
    return validate(core, fiber, checked, peeked, renew, k)
  }
  return Effect.matchEffect(core.backend.fetch(checked.key, checked.entry), {
    onFailure: (error) => {
      if (core.observe) recordStore("fetch", start, true)
      account(fiber, core.observe, "StoreError")
      return k.refused(error)
    },
    onSuccess: (stored) => {
      if (core.observe) recordStore("fetch", start, false)
      return validate(core, fiber, checked, stored, renew, k)
    }
  })
}

const validate = <A, X, E, R>(
  core: Core<A>,
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  checked: Checked<A>,
  stored: Option.Option<Entry>,
  renew: boolean,
  k: ReadContinuation<A, X, E, R>
): Effect.Effect<X, E, R> => {
  const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
  if (Option.isNone(stored)) {
    account(fiber, core.observe, "NotFound")
    return k.refused(core.refusals.notFound)
  }
  const entry = stored.value
  // The entry must belong to the token's user: a keyed fingerprint of its user id is the token's tag, so
  // whoever can write to the store but lacks the keys cannot move a session to another user.
  if (entry.userId !== checked.owner) {
    if (!owns(core, entry.userId, checked.key.user)) {
      account(fiber, core.observe, "NotFound")
      return k.refused(core.refusals.notFound)
    }
    checked.owner = entry.userId
  }
  const current = entry.secret === checked.secret
  if (!current && !(entry.previous === checked.secret && now < entry.previousUntil)) {
    // The lineage lives on under a newer id: this token was renewed (by another request of this client,
    // most likely), so the client must not be told to drop its token.
    account(fiber, core.observe, "NotFound")
    return k.refused(core.refusals.superseded)
  }
  if (Lifetime.isDead(core.lifetime, entry, now)) {
    account(fiber, core.observe, "Expired")
    return k.refused(core.refusals.expired)
  }
  let session = checked.entry === entry ? checked.session : undefined
  if (session === undefined) {
    const data = core.codec.decode(entry.data)
    if (Either.isLeft(data)) {
      account(fiber, core.observe, "NotFound")
      return Effect.zipRight(decodeFailed, k.refused(core.refusals.notFound))
    }
    const shared = freezeData(data.right)
    session = toSession(core, checked.id, checked.key, entry, data.right, checked.secret)
    checked.entry = shared ? entry : undefined
    checked.session = shared ? session : undefined
  }
  if (!current) {
    // An id in its renewal grace: it reads, and is never renewed, re-signed or extended.
    account(fiber, core.observe, "valid")
    return k.valid({ session, token: undefined })
  }
  return serve(core, fiber, checked, entry, session, now, renew, k)
}

// A valid session read through its current id: renewed when due (if `renew`), its use recorded when a
// limit needs it, re-signed when an older key verified it.
const serve = <A, X, E, R>(
  core: Core<A>,
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  checked: Checked<A>,
  entry: Entry,
  session: Session<A>,
  now: number,
  renew: boolean,
  k: ReadContinuation<A, X, E, R>
): Effect.Effect<X, E, R> => {
  const renewal = core.lifetime.renewal
  if (renew && renewal !== undefined && now - entry.renewedAt >= renewal) {
    return Effect.matchEffect(
      settle(
        core,
        renewId(core, session, core.lifetime.renewalGrace).pipe(
          // A concurrent request renewed it first: this one is served by the old id's grace.
          Effect.catchTag("Conflict", "NotFound", () => Effect.succeed({ session, token: undefined }))
        )
      ),
      { onFailure: k.refused, onSuccess: k.valid }
    )
  }
  const resigned = checked.keyIndex === 0 ? undefined : core.auth.sign(checked.raw, core.domain)
  const touched = touch(core, session, entry, now)
  if (touched !== undefined) {
    return Effect.matchEffect(
      settle(
        core,
        Effect.map(touched, (written): Resolved<A> =>
          written === undefined
            ? { session, token: resigned }
            : { session: written, token: resigned ?? core.auth.sign(checked.raw, core.domain) })
      ),
      { onFailure: k.refused, onSuccess: k.valid }
    )
  }
  account(fiber, core.observe, "valid")
  return k.valid({ session, token: resigned })
}

const asEffect: ReadContinuation<any, Resolved<any>, Rejected | StoreError, never> = {
  valid: Effect.succeed,
  refused: Effect.fail
}

/**
 * The read as an effect of its own. Reads annotate the enclosing span rather than open their own (unless
 * `traceReads`): a span costs more than the whole validation.
 */
export const read = <A>(
  core: Core<A>,
  token: string,
  renew: boolean
): Effect.Effect<Resolved<A>, Rejected | StoreError> => {
  const effect = Effect.withFiberRuntime((fiber: Fiber.RuntimeFiber<Resolved<A>, Rejected | StoreError>) =>
    readWith(core, fiber as Fiber.RuntimeFiber<unknown, unknown>, token, renew, asEffect)
  )
  return core.traceReads ? Effect.withSpan(effect, renew ? "Sessions.resolve" : "Sessions.get") : effect
}
