/**
 * The pieces of `Session.optionsConfig`: durations and the rolling policy read from the environment,
 * validated inside `nested` so that an error's path names the variable.
 *
 * @internal
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { Options } from "../Session.js"

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/** A positive, finite duration under `name`. */
export const positiveDuration = (name: string): Config.Config<Duration.Duration> =>
  Config.duration().pipe(
    Config.validate({
      message: "expected a positive, finite duration such as \"3 days\" or \"90 minutes\"",
      validation: (duration) => Duration.isFinite(duration) && Duration.toMillis(duration) >= 1
    }),
    Config.nested(name)
  )

/** An optional positive, finite duration under `name`. */
export const optionalPositiveDuration = (name: string): Config.Config<Duration.Duration | undefined> =>
  optional(positiveDuration(name))

/** An optional duration (zero allowed) under `name`. */
export const optionalDuration = (name: string): Config.Config<Duration.Duration | undefined> =>
  optional(Config.duration(name))

/** `SESSION_ROLLING`: `true`, `false`, or a threshold in (0, 1]. */
export const rolling: Config.Config<Options["rolling"]> = optional(
  Config.string().pipe(
    Config.mapOrFail((value): Either.Either<NonNullable<Options["rolling"]>, ConfigError.ConfigError> => {
      const text = value.trim().toLowerCase()
      if (text === "true") return Either.right(true)
      if (text === "false") return Either.right(false)
      const threshold = Number(text)
      return text !== "" && threshold > 0 && threshold <= 1
        ? Either.right({ threshold })
        : Either.left(ConfigError.InvalidData([], "expected true, false or a threshold in (0, 1] such as 0.5"))
    }),
    Config.nested("SESSION_ROLLING")
  )
)

/** An optional whole number of at least 1 under `name`. */
export const optionalCount = (name: string): Config.Config<number | undefined> =>
  optional(
    Config.integer().pipe(
      Config.validate({ message: "expected a whole number, 1 or more", validation: (n) => n >= 1 }),
      Config.nested(name)
    )
  )
