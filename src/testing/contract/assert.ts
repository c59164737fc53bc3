/**
 * How a contract case says that a store broke its clause: a {@link ContractViolation}, a typed failure, so
 * that the cases run under any test runner (or none) and a test can tell a broken clause from a store that
 * failed (`StoreError`).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/**
 * A store answered what its contract forbids. `about` names what the case checked; `expected` and `actual`
 * are the values compared, when the case compared two.
 *
 * @since 0.1.0
 * @category errors
 */
export class ContractViolation extends Data.TaggedError("ContractViolation")<{
  readonly message: string
  readonly about: string
  readonly expected?: unknown
  readonly actual?: unknown
}> {}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

/**
 * Equality of the values a store keeps and answers (JSON values, entries, keys, options of them): arrays
 * element by element, objects by their defined properties (an `undefined` property equals a missing one),
 * anything else by `Object.is`.
 *
 * @since 0.1.0
 * @category assertions
 */
export const equivalent = (a: unknown, b: unknown): boolean => {
  if (Object.is(a, b)) return true
  if (Option.isOption(a) || Option.isOption(b)) {
    if (!Option.isOption(a) || !Option.isOption(b)) return false
    return Option.isNone(a) ? Option.isNone(b) : Option.isSome(b) && equivalent(a.value, b.value)
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    return a.every((item, i) => equivalent(item, b[i]))
  }
  if (!isRecord(a) || !isRecord(b)) return false
  const defined = (record: Record<string, unknown>) => Object.keys(record).filter((k) => record[k] !== undefined)
  const keys = defined(a)
  return keys.length === defined(b).length && keys.every((k) => equivalent(a[k], b[k]))
}

const show = (u: unknown): string => {
  const text = JSON.stringify(u, (_, v) => Option.isOption(v) ? (Option.isSome(v) ? { some: v.value } : "none") : v)
  return text === undefined ? String(u) : text.length > 300 ? `${text.slice(0, 300)}…` : text
}

/**
 * Succeeds when `actual` is {@link equivalent} to `expected`, else fails with a {@link ContractViolation}.
 *
 * @since 0.1.0
 * @category assertions
 */
export const equal = (actual: unknown, expected: unknown, what = "the store's answer"): Effect.Effect<
  void,
  ContractViolation
> =>
  equivalent(actual, expected) ? Effect.void : Effect.fail(
    new ContractViolation({
      message: `${what}: expected ${show(expected)}, got ${show(actual)}`,
      about: what,
      expected,
      actual
    })
  )

/**
 * Succeeds when `condition` holds, else fails with a {@link ContractViolation} saying `what` should have.
 *
 * @since 0.1.0
 * @category assertions
 */
export const ok = (condition: boolean, what: string): Effect.Effect<void, ContractViolation> =>
  condition ? Effect.void : Effect.fail(new ContractViolation({ message: `expected ${what}`, about: what }))

/**
 * The value of an answer that must be there.
 *
 * @since 0.1.0
 * @category assertions
 */
export const present = <A>(option: Option.Option<A>, what = "the entry"): Effect.Effect<A, ContractViolation> =>
  Option.isSome(option)
    ? Effect.succeed(option.value)
    : Effect.fail(new ContractViolation({ message: `expected ${what} to be answered, got none`, about: what }))
