/**
 * What a contract case is: a name, the clause of the Store contract it checks, and an `Effect` that fails
 * when the store breaks that clause.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Store from "../../Store.js"
import type { ContractViolation } from "./assert.js"
import * as F from "./fixtures.js"

/**
 * The clauses of the Store contract (see the top of `effect-sessions/Store`) that the cases check, as
 * {@link clauses} states them.
 *
 * @since 0.1.0
 * @category models
 */
export type Clause =
  | "fetch, save and delete"
  | "compare-and-set"
  | "list"
  | "deleteUser"
  | "retention"
  | "expiry"
  | "per-user cap"
  | "races"

/**
 * Each clause, in the words of the contract, in the order the suite runs them.
 *
 * @since 0.1.0
 * @category models
 */
export const clauses: { readonly [C in Clause]: string } = {
  "fetch, save and delete": "fetch answers the entry as saved, none for a missing key; \"create\" writes only an " +
    "absent key; delete is idempotent; keys, data and times are kept exactly",
  "compare-and-set": "\"update\" writes only a present key holding version entry.version - 1",
  "list": "list(user, now) answers every readable entry of that user whose expiresAt is after now",
  "deleteUser": "deleteUser(user, except) deletes every session of that user but except",
  "retention": "an entry is answered after its expiresAt until Store.expiredRetention later",
  "expiry": "once expiresAt + Store.expiredRetention has passed by the store's clock, fetch answers none; " +
    "deleteUser answers only the live sessions it deleted",
  "per-user cap": "a \"create\" given a cap first deletes the user's least recently seen live entries (lastSeenAt, " +
    "then createdAt) while the user has cap.maxPerUser or more live by cap.now",
  "races": "deleteUser is atomic with respect to save: nothing saved before it survives it"
}

/**
 * One case of the contract. `effect` needs a `Store` and runs on the real clock (a backend such as Redis
 * keeps its own); it writes under random users and keys only, so cases share a store in any order and a
 * shared backend needs no flushing. It fails with a {@link ContractViolation} when the store breaks
 * `clause`, and with the store's `StoreError` when the store fails.
 *
 * @since 0.1.0
 * @category models
 */
export interface Case {
  readonly name: string
  readonly clause: Clause
  readonly effect: Effect.Effect<void, ContractViolation | Store.StoreError, Store.Store>
  /** How long the case may take, in milliseconds (30 seconds, a minute for the longest). */
  readonly timeout: number
}

/**
 * What a case does with the store it is handed, and a new random user to write under: fails with a
 * {@link ContractViolation} when the store breaks the case's clause.
 *
 * @since 0.1.0
 * @category models
 */
export type Body = (
  store: Store.StoreService,
  user: string
) => Effect.Effect<void, ContractViolation | Store.StoreError>

/**
 * The constructor of the cases of one clause: each run of a case is handed the `Store` it runs against and a
 * user no other run writes under.
 *
 * @since 0.1.0
 * @category constructors
 */
export const of = (clause: Clause) => (name: string, body: Body, timeout = 30_000): Case => ({
  name,
  clause,
  effect: Effect.flatMap(Store.Store, (store) => body(store, F.newUser())),
  timeout
})
