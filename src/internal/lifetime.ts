/**
 * A session's lifetime: the options that bound it, checked once when the service is built, and the
 * deadlines derived from them.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import type { Options } from "../Session.js"
import type { Entry } from "../Store.js"

/** The limits in force, in milliseconds (`undefined`: that limit is off). */
export interface Lifetime {
  readonly ttl: Duration.Duration
  readonly ttlMillis: number
  readonly idle: number | undefined
  readonly absolute: number | undefined
  /** Renew the id (rotate) once it is this old, in the HTTP layer. */
  readonly renewal: number | undefined
  /** How long an id replaced by `rotate` keeps reading. */
  readonly rotationGrace: number
  /** How long an id replaced by the automatic renewal keeps reading. */
  readonly renewalGrace: number
  readonly rolling: boolean
  /** The share of the lifetime (and of the idle window) left below which a use is written. */
  readonly threshold: number
}

const positive = (name: string, input: Duration.DurationInput | undefined) => {
  if (input === undefined) return Either.right(undefined)
  const millis = Duration.toMillis(Duration.decode(input))
  return Number.isFinite(millis) && millis >= 1
    ? Either.right(millis)
    : Either.left(`${name} must be a finite duration of at least 1 millisecond`)
}

/** A session's own lifetime (`IssueOptions.ttl`) in milliseconds, or why it is unusable. */
export const sessionTtl = (input: Duration.DurationInput): Either.Either<number, string> =>
  Either.map(positive("a session's ttl", input), (millis) => Math.round(millis!))

const nonNegative = (name: string, input: Duration.DurationInput | undefined, fallback: number) => {
  if (input === undefined) return Either.right(fallback)
  const millis = Duration.toMillis(Duration.decode(input))
  return Number.isFinite(millis) && millis >= 0
    ? Either.right(millis)
    : Either.left(`${name} must be a finite duration`)
}

/** The lifetime `options` ask for, or why they are unusable. */
export const fromOptions = (
  options: Options,
  defaults: { readonly ttl: Duration.Duration; readonly renewalGrace: Duration.Duration }
): Either.Either<Lifetime, string> =>
  Either.gen(function*() {
    const ttl = Duration.decode(options.ttl ?? defaults.ttl)
    const threshold = typeof options.rolling === "object" ? options.rolling.threshold ?? 0.5 : 0.5
    if (!(threshold > 0 && threshold <= 1)) return yield* Either.left("rolling.threshold must be in (0, 1]")
    return {
      ttl,
      ttlMillis: (yield* positive("the session ttl", ttl))!,
      idle: yield* positive("idleTimeout", options.idleTimeout),
      absolute: yield* positive("absoluteLifetime", options.absoluteLifetime),
      renewal: yield* positive("renewalInterval", options.renewalInterval),
      rotationGrace: yield* nonNegative("rotationGrace", options.rotationGrace, 0),
      renewalGrace: yield* nonNegative("renewalGrace", options.renewalGrace, Duration.toMillis(defaults.renewalGrace)),
      rolling: options.rolling === true || typeof options.rolling === "object",
      threshold
    }
  })

/** How long `entry`'s session lives after issue or extension: its own ttl, else the service's. */
export const ttlOf = (lifetime: Lifetime, entry: Pick<Entry, "ttl">): number => entry.ttl ?? lifetime.ttlMillis

/**
 * When a session dies: the earliest of its expiry, its idle deadline and its absolute deadline, by the
 * options in force now (so tightening them applies to existing sessions too).
 */
export const deadline = (
  lifetime: Lifetime,
  entry: Pick<Entry, "createdAt" | "extendedUntil" | "lastSeenAt">
): number =>
  Math.min(
    entry.extendedUntil,
    lifetime.idle === undefined ? Infinity : entry.lastSeenAt + lifetime.idle,
    lifetime.absolute === undefined ? Infinity : entry.createdAt + lifetime.absolute
  )

/** Whether the session `entry` is dead at `now`, by what was stored or by the options in force. */
export const isDead = (lifetime: Lifetime, entry: Entry, now: number): boolean =>
  now >= entry.expiresAt || now >= deadline(lifetime, entry)

/**
 * What a use at `now` must record, if anything: rolling expiry when less than `threshold` of the session's
 * lifetime (its own ttl, else the service's) is left (`roll`), the idle timeout when less than `threshold` of the idle window is left (`seen`).
 * Otherwise `undefined`: the read writes nothing.
 */
export const dueOnUse = (
  lifetime: Lifetime,
  entry: Entry,
  now: number
): { readonly roll: boolean } | undefined => {
  const roll = lifetime.rolling && entry.extendedUntil - now < lifetime.threshold * ttlOf(lifetime, entry)
  const seen = lifetime.idle !== undefined &&
    entry.lastSeenAt + lifetime.idle - now < lifetime.threshold * lifetime.idle
  return roll ? rolls : seen ? records : undefined
}

const rolls = { roll: true } as const
const records = { roll: false } as const
