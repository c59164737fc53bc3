/**
 * The contract of the Store port (see the top of `effect-sessions/Store`), shipped so that every store runs
 * the same cases: this package's backends, and yours. In a test file of a project with vitest ^3.2 and
 * @effect/vitest ^0.30 (optional peers of this package):
 *
 * ```ts
 * import * as Memory from "effect-sessions/layers/Memory"
 * import * as StoreContract from "effect-sessions/testing/StoreContract"
 *
 * // your store's layer in place of the in-memory one
 * StoreContract.suite("in-memory store", Memory.layer())
 * ```
 *
 * The cases are also data ({@link cases}: a name, the {@link Clause} it checks, an `Effect` that fails with a
 * {@link ContractViolation} when the store breaks it), and {@link run} runs one against a layer and answers
 * its `Exit`: a test can show that a store which breaks a clause fails the cases of that clause.
 *
 * Every case writes under its own random users and sessions (base64url, like the keys the `Sessions` service
 * makes), so the cases are independent of each other and of their order, and a shared backend (a Redis
 * server) needs no flushing. Expiry times are far in the future unless a case is about expiry: `list` and
 * the per-user cap take `now` as an argument, so most cases pass a `now` past an entry's expiry instead of
 * waiting. The retention and expiry cases use the real clock: entries that expired a minute ago (every store
 * still answers them), entries saved already past `expiresAt + Store.expiredRetention` and entries that pass
 * it while the case waits about a second (no store answers them).
 *
 * {@link suite} builds the store once in a `ManagedRuntime` rather than with @effect/vitest's `layer(...)`:
 * in @effect/vitest 0.30 `layer(...)` reassigns `effect`/`scoped` on the shared `it` object, so every
 * `it.effect` declared after it in the same file would silently run in the suite's runtime and share its
 * TestClock (fixed upstream in Effect 4 only: Effect-TS/effect-smol#2177). The cases run with `it.live`,
 * which `layer(...)` leaves alone, and on the real clock, so that a backend's own clock (Redis expires keys
 * by it) and timers (a command timeout) behave as in production.
 *
 * @since 0.1.0
 * @module
 */
import * as Vitest from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type * as Store from "../Store.js"
import { ContractViolation } from "./contract/assert.js"
import * as Cap from "./contract/cap.js"
import type { Case, Clause } from "./contract/Case.js"
import { clauses } from "./contract/Case.js"
import * as CompareAndSet from "./contract/compareAndSet.js"
import * as DeleteUser from "./contract/deleteUser.js"
import * as Expiry from "./contract/expiry.js"
import * as Fetch from "./contract/fetch.js"
import * as List from "./contract/list.js"
import * as Races from "./contract/races.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * One case of the contract: its `name`, the `clause` it checks, and an `effect` that needs a `Store` and
 * fails with a {@link ContractViolation} when the store breaks that clause.
 *
 * @since 0.1.0
 * @category models
 */
export type { Case, Clause }

/**
 * Each {@link Clause}, in the words of the contract, in the order {@link suite} runs them.
 *
 * @since 0.1.0
 * @category models
 */
export { clauses }

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * What a case fails with when the store answers what its contract forbids.
 *
 * @since 0.1.0
 * @category errors
 */
export { ContractViolation }

// -----------------------------------------------------------------------------
// cases
// -----------------------------------------------------------------------------

/**
 * Every case of the contract, clause by clause.
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case> = [
  ...Fetch.cases,
  ...CompareAndSet.cases,
  ...List.cases,
  ...DeleteUser.cases,
  ...Expiry.cases,
  ...Cap.cases,
  ...Races.cases
]

// -----------------------------------------------------------------------------
// running
// -----------------------------------------------------------------------------

/**
 * Runs one case against a new store built from `layer` (released after it), on the real clock even under
 * a `TestClock`, and answers how it ended: a failure with a {@link ContractViolation} means the store broke
 * the case's clause; one that ran past the case's `timeout` fails with one too.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <E>(
  self: Case,
  layer: Layer.Layer<Store.Store, E>
): Effect.Effect<Exit.Exit<void, ContractViolation | Store.StoreError | E>> =>
  Effect.provide(self.effect, layer).pipe(
    Effect.timeoutFail({
      duration: self.timeout,
      onTimeout: () =>
        new ContractViolation({ message: `did not complete within ${self.timeout} ms`, about: "the case's duration" })
    }),
    Effect.exit,
    Effect.withClock(Clock.make())
  )

/** Fails the test with vitest's diff of what the case compared, else with the violation itself. */
const report = (violation: ContractViolation) =>
  Effect.sync(() => {
    if ("expected" in violation) Vitest.expect(violation.actual, violation.about).toEqual(violation.expected)
    throw violation
  })

/**
 * Registers the contract's cases (all of them, or `options.cases`) as tests of a vitest `describe` block
 * named after `name`, one block per clause, against the store built by `layer`: built once before the first
 * case and released after the last. Call it at the top level of a test file.
 *
 * @since 0.1.0
 * @category running
 */
export const suite = (
  name: string,
  layer: Layer.Layer<Store.Store, unknown>,
  options: { readonly cases?: ReadonlyArray<Case> | undefined } = {}
): void => {
  const selected = options.cases ?? cases
  Vitest.describe(`Store contract: ${name}`, () => {
    const runtime = ManagedRuntime.make(layer)
    Vitest.beforeAll(() => runtime.runtime(), 60_000)
    Vitest.afterAll(() => runtime.dispose(), 60_000)
    for (const clause of Object.keys(clauses) as ReadonlyArray<Clause>) {
      const ofClause = selected.filter((c) => c.clause === clause)
      if (ofClause.length === 0) continue
      Vitest.describe(clause, () => {
        for (const c of ofClause) {
          Vitest.it.live(
            c.name,
            () =>
              Effect.flatMap(
                runtime.runtimeEffect,
                (rt) => Effect.provide(Effect.catchTag(c.effect, "ContractViolation", report), rt.context)
              ),
            c.timeout
          )
        }
      })
    }
  })
}

// -----------------------------------------------------------------------------
// fixtures
// -----------------------------------------------------------------------------

export {
  /**
   * A complete store entry (version 0) for tests that write to a store directly.
   *
   * @since 0.1.0
   * @category fixtures
   */
  makeEntry,
  /**
   * An entry changed as a store "update" of it must be: with the next version.
   *
   * @since 0.1.0
   * @category fixtures
   */
  nextVersion
} from "./contract/fixtures.js"

export {
  /**
   * Fires `total` creates concurrently and calls `revoke` midway through them, for the tests that nothing
   * escapes a revocation (see `effect-sessions/testing/contract/races`).
   *
   * @since 0.1.0
   * @category races
   */
  revokeMidway
} from "./contract/races.js"
