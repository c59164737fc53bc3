/**
 * The cases of fetch, save and delete: what is saved is fetched back exactly, under its own key only.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import * as F from "./fixtures.js"
import * as Step from "./steps.js"

const testCase = Case.of("fetch, save and delete")

/** Every field of `before` changed, for an "update" of it. */
const everyFieldChanged = (before: Store.Entry): Store.Entry =>
  F.newEntry({
    version: 1,
    userId: `${before.userId}-renamed`,
    createdAt: before.createdAt + 1,
    renewedAt: before.renewedAt + 2,
    extendedUntil: F.fartherFuture + 3,
    expiresAt: F.fartherFuture,
    lastSeenAt: before.lastSeenAt + 4,
    secret: `${before.secret}-renewed`,
    previous: before.secret,
    previousUntil: F.fartherFuture + 5,
    userAgent: "Mozilla/5.0 ünï ✓",
    address: "2001:db8::1",
    data: { csrf: "new", visits: 2 }
  })

/** Keys that share a part with `key`, or differ from it by case or by one character. */
const lookalikes = (key: Store.Key): ReadonlyArray<Store.Key> => [
  { user: key.user, session: F.swapCase(key.session) },
  { user: key.user, session: `${key.session}x` },
  { user: key.user, session: key.session.slice(0, -1) },
  { user: F.swapCase(key.user), session: key.session },
  { user: `${key.user}x`, session: key.session },
  { user: key.user.slice(0, -1), session: key.session },
  { user: F.newUser(), session: key.session }
]

/** JSON values of every kind, for the data of an entry. */
const jsonValues: ReadonlyArray<unknown> = [
  null,
  true,
  false,
  0,
  -17,
  3.25,
  "",
  "ünïcødé ✓ 🍪 \"quoted\" \\ \n newline",
  [],
  [1, "two", null, [3]],
  {},
  { nested: { deeper: { list: [{ a: 1 }, { b: "c" }] } }, flag: false, empty: "" },
  { big: "x".repeat(10_000) }
]

/** Entries that are garbage to a session schema, or that look like a stored entry, but are valid to a store. */
const oddEntries = (): ReadonlyArray<Store.Entry> => {
  let nested: unknown = "bottom"
  for (let i = 0; i < 64; i++) nested = [nested]
  return [
    // data that looks like a stored entry, or like its serialised form
    F.newEntry({ data: [1, "someone-else", 0, 1, null] }),
    F.newEntry({ data: "[1,\"someone-else\",0,1,null]" }),
    F.newEntry({ data: [2, 5, "someone-else", 0, 0, 1, 1, 0, 0, null, null, null] }),
    F.newEntry({ data: "[2,5,\"someone-else\",0,0,1,1,0,0,null,null,null]" }),
    F.newEntry({ data: [3, 5, 0, 0, 0, 0, 0, 0, "someone-else", "s", null, null, null, null] }),
    F.newEntry({ data: "[3,5,0,0,0,0,0,0,\"someone-else\",\"s\",null,null,null,null]" }),
    F.newEntry({ data: "not json {" }),
    // characters that mean something to a key layout or to JSON
    F.newEntry({ data: { "{": "}", ":": [], "": "", "\"": "\\", "key with spaces": "\u0000\u001f" } }),
    F.newEntry({ data: "\ud800 lone surrogate, \u2028 line separator" }),
    F.newEntry({ data: [1e308, 5e-324, -1.5e-7, Number.MAX_SAFE_INTEGER, 2 ** 60] }),
    F.newEntry({ data: nested }),
    F.newEntry({ userId: "", createdAt: 0, data: null }),
    F.newEntry({ userId: "{tag}:ünï 🍪 \"q\" \\ \n", createdAt: F.farFuture + 1, expiresAt: F.farFuture + 1 }),
    F.newEntry({ userAgent: "[2,5,{tag}:ünï 🍪 \"q\" \\ \n", address: "" }),
    F.newEntry({ userAgent: "", address: "null" }),
    F.newEntry({ secret: "", previous: "", previousUntil: 0 }),
    F.newEntry({ secret: "[3,1,2,3,", previous: "{tag}:\"q\" \\", previousUntil: F.farFuture + 2 })
  ]
}

/**
 * The cases of the clause "fetch, save and delete".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "fetch of a key never written is none, also under a user that has other sessions",
    (store) =>
      Effect.gen(function*() {
        const key = F.newKey()
        yield* Step.fetches(store, key, undefined)
        yield* Step.saves(store, { key, entry: F.newEntry() }, "create", true)
        yield* Step.fetches(store, F.newKey(key.user), undefined)
      })
  ),

  testCase(
    "create writes a new key and fetch returns the entry as saved",
    (store) => Step.roundTrip(store, [{ key: F.newKey(), entry: F.newEntry() }])
  ),

  testCase(
    "fetch with a known entry answers it only while the stored value is unchanged",
    (store) =>
      Effect.gen(function*() {
        const { entry: first, key } = yield* Step.created(store, { key: F.newKey(), entry: F.newEntry() })
        const read = yield* Assert.present(yield* store.fetch(key))
        // unchanged: the known entry, or an equal one
        yield* Assert.equal(yield* store.fetch(key, read), Option.some(first))
        // an entry it never answered for this key is not a reason to answer it
        const stranger = F.newEntry()
        yield* Assert.ok((yield* Assert.present(yield* store.fetch(key, stranger))) !== stranger, "not the same object")
        // changed: never the known entry
        const second = F.nextVersion(first, { data: { csrf: "changed" } })
        yield* Step.saves(store, { key, entry: second }, "update", true)
        const after = yield* Assert.present(yield* store.fetch(key, read))
        yield* Assert.ok(after !== read, "not the same object")
        yield* Assert.equal(after, second)
        // deleted: none, whatever was known
        yield* store.delete(key)
        yield* Assert.equal(yield* store.fetch(key, after), Option.none())
      })
  ),

  testCase("create refuses an existing key and leaves its entry unchanged", (store) =>
    Effect.gen(function*() {
      const first: Store.Listed = { key: F.newKey(), entry: F.newEntry() }
      yield* F.create(store, [first])
      yield* Step.saves(
        store,
        { ...first, entry: F.newEntry({ expiresAt: F.fartherFuture, data: { other: true } }) },
        "create",
        false
      )
      yield* Step.fetches(store, first.key, first.entry)
    })),

  testCase("update refuses a missing key and does not create it", (store) =>
    Effect.gen(function*() {
      const key = F.newKey()
      // whatever version it carries
      for (const version of [0, 1, 2, 10]) {
        yield* Step.saves(store, { key, entry: F.newEntry({ version }) }, "update", false)
      }
      yield* Step.fetches(store, key, undefined)
      yield* Step.lists(store, key.user, F.farFuture - 1, [])
    })),

  testCase("update replaces every field of an existing entry", (store) =>
    Effect.gen(function*() {
      const before: Store.Listed = { key: F.newKey(), entry: F.newEntry() }
      const after = everyFieldChanged(before.entry)
      yield* F.create(store, [before])
      yield* Step.saves(store, { key: before.key, entry: after }, "update", true)
      yield* Step.fetches(store, before.key, after)
    })),

  testCase("delete removes the entry, after which create works again", (store) =>
    Effect.gen(function*() {
      const write: Store.Listed = { key: F.newKey(), entry: F.newEntry() }
      yield* F.create(store, [write])
      yield* store.delete(write.key)
      yield* Step.fetches(store, write.key, undefined)
      yield* Step.roundTrip(store, [write])
    })),

  testCase("delete is idempotent", (store) =>
    Effect.gen(function*() {
      const key = F.newKey()
      yield* store.delete(key)
      yield* F.create(store, [{ key, entry: F.newEntry() }])
      yield* store.delete(key)
      yield* store.delete(key)
      yield* Step.fetches(store, key, undefined)
    })),

  testCase("update after delete is refused: a cleared entry is never brought back", (store) =>
    Effect.gen(function*() {
      const key = F.newKey()
      const entry = F.newEntry()
      yield* F.create(store, [{ key, entry }])
      yield* store.delete(key)
      yield* Step.saves(store, { key, entry: F.nextVersion(entry, { expiresAt: F.fartherFuture }) }, "update", false)
      yield* Step.fetches(store, key, undefined)
      yield* Step.lists(store, key.user, F.farFuture - 1, [])
    })),

  testCase(
    "keys are independent: a shared part, a case difference or a longer part is another key",
    (store) =>
      Effect.gen(function*() {
        const first: Store.Listed = { key: F.newKey(), entry: F.newEntry() }
        const others = lookalikes(first.key).map((key): Store.Listed => ({ key, entry: F.newEntry() }))
        yield* Step.roundTrip(store, [first, ...others])
        yield* store.delete(first.key)
        yield* Step.fetches(store, first.key, undefined)
        for (const { entry, key } of others) yield* Step.fetches(store, key, entry)
      })
  ),

  testCase(
    "JSON-compatible data round-trips exactly",
    (store) => Step.roundTrip(store, jsonValues.map((data) => ({ key: F.newKey(), entry: F.newEntry({ data }) })))
  ),

  testCase(
    "the store keeps any JSON data and any user id: garbage to a session schema round-trips exactly",
    (store, user) =>
      Effect.gen(function*() {
        const writes = oddEntries().map((entry): Store.Listed => ({ key: F.newKey(user), entry }))
        yield* Step.roundTrip(store, writes)
        yield* Step.lists(store, user, F.farFuture - 1, writes)
      })
  ),

  testCase("times keep millisecond precision", (store) =>
    Effect.gen(function*() {
      const key = F.newKey()
      yield* F.create(store, [{
        key,
        entry: F.newEntry({ createdAt: F.farFuture - 1_234_567, expiresAt: F.farFuture + 789 })
      }])
      const fetched = yield* store.fetch(key)
      yield* Assert.equal(
        Option.map(fetched, (e) => [e.createdAt, e.expiresAt]),
        Option.some([F.farFuture - 1_234_567, F.farFuture + 789])
      )
    })),

  testCase(
    "of concurrent creates of one key, exactly one wins and its entry is stored",
    (store) =>
      Effect.gen(function*() {
        const key = F.newKey()
        const candidates = Array.from({ length: 20 }, () => F.newEntry())
        const results = yield* Effect.forEach(candidates, (entry) => store.save(key, entry, "create"), {
          concurrency: "unbounded"
        })
        yield* Assert.equal(results.filter((wrote) => wrote).length, 1)
        const winner = candidates[results.indexOf(true)]!
        yield* Step.fetches(store, key, winner)
        yield* Assert.equal(yield* store.list(key.user, F.farFuture - 1), [{ key, entry: winner }])
      })
  ),

  testCase("concurrent creates of distinct keys all succeed", (store) =>
    Effect.gen(function*() {
      const writes = Array.from({ length: 50 }, (): Store.Listed => ({ key: F.newKey(), entry: F.newEntry() }))
      const results = yield* Effect.forEach(writes, ({ entry, key }) => store.save(key, entry, "create"), {
        concurrency: "unbounded"
      })
      yield* Assert.equal(results.every((wrote) => wrote), true)
      const fetched = yield* Effect.forEach(writes, ({ key }) => store.fetch(key), { concurrency: "unbounded" })
      yield* Assert.equal(fetched, writes.map(({ entry }) => Option.some(entry)))
    }))
]
