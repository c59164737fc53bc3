/**
 * examples/custom-store.ts keeps the Store contract: the shipped suite runs against it. And the suite's
 * expiry cases catch a store that never forgets: the same store with its clock stuck at the epoch (it then
 * answers every entry however long ago it expired, and counts every deleted entry as live) fails each of
 * them, by a violation of the clause, while it still passes the cases that do not depend on its clock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import * as CustomStore from "../../examples/custom-store.js"
import * as Store from "../../src/Store.js"
import * as StoreContract from "../../src/testing/StoreContract.js"

StoreContract.suite("examples/custom-store.ts", CustomStore.layer)

const neverExpiring = Layer.sync(Store.Store, () => Store.make(CustomStore.backend(Effect.succeed(0))))

describe("the contract against the custom store with its clock stuck at the epoch", () => {
  const expiry = StoreContract.cases.filter((c) => c.clause === "expiry")

  it("has the expiry cases", () => {
    expect(expiry.map((c) => c.name)).toHaveLength(5)
  })

  for (const c of expiry) {
    it.live(`fails: ${c.name}`, () =>
      Effect.gen(function*() {
        const exit = yield* StoreContract.run(c, neverExpiring)
        expect(Exit.isFailure(exit)).toBe(true)
        const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        expect(Option.map(failure, (e) => e._tag)).toEqual(Option.some("ContractViolation"))
      }), c.timeout)
  }

  // a sample of the clauses that do not depend on the store's clock (the retention case included)
  const others = StoreContract.cases.filter((c) =>
    c.clause === "retention" || c.clause === "list" || c.name.startsWith("create writes a new key")
  )
  for (const c of others) {
    it.live(`passes: ${c.name}`, () =>
      Effect.gen(function*() {
        expect(yield* StoreContract.run(c, neverExpiring)).toEqual(Exit.void)
      }), c.timeout)
  }
})
