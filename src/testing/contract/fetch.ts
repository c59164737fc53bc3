/**
 * The cases of fetch, save and delete: what is saved is fetched back exactly, under its own key only.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import {
  bySession,
  create,
  farFuture,
  fartherFuture,
  newEntry,
  newKey,
  newUser,
  nextVersion,
  swapCase
} from "./fixtures.js"

const testCase = Case.of("fetch, save and delete")

/**
 * The cases of the clause "fetch, save and delete".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "fetch of a key never written is none, also under a user that has other sessions",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      yield* Assert.equal(yield* store.fetch(key), Option.none())
      yield* Assert.equal(yield* store.save(key, newEntry(), "create"), true)
      yield* Assert.equal(yield* store.fetch(newKey(key.user)), Option.none())
    })
  ),

  testCase(
    "create writes a new key and fetch returns the entry as saved",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      const entry = newEntry()
      yield* Assert.equal(yield* store.save(key, entry, "create"), true)
      yield* Assert.equal(yield* store.fetch(key), Option.some(entry))
    })
  ),

  testCase(
    "fetch with a known entry answers it only while the stored value is unchanged",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      const first = newEntry()
      yield* Assert.equal(yield* store.save(key, first, "create"), true)
      const read = yield* Assert.present(yield* store.fetch(key))
      // unchanged: the known entry, or an equal one
      yield* Assert.equal(yield* store.fetch(key, read), Option.some(first))
      // an entry it never answered for this key is not a reason to answer it
      const stranger = newEntry()
      yield* Assert.ok((yield* Assert.present(yield* store.fetch(key, stranger))) !== stranger, "not the same object")
      // changed: never the known entry
      const second = nextVersion(first, { data: { csrf: "changed" } })
      yield* Assert.equal(yield* store.save(key, second, "update"), true)
      const after = yield* Assert.present(yield* store.fetch(key, read))
      yield* Assert.ok(after !== read, "not the same object")
      yield* Assert.equal(after, second)
      // deleted: none, whatever was known
      yield* store.delete(key)
      yield* Assert.equal(yield* store.fetch(key, after), Option.none())
    })
  ),

  testCase(
    "create refuses an existing key and leaves its entry unchanged",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      const first = newEntry()
      const second = newEntry({ expiresAt: fartherFuture, data: { other: true } })
      yield* Assert.equal(yield* store.save(key, first, "create"), true)
      yield* Assert.equal(yield* store.save(key, second, "create"), false)
      yield* Assert.equal(yield* store.fetch(key), Option.some(first))
    })
  ),

  testCase(
    "update refuses a missing key and does not create it",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      // whatever version it carries
      for (const version of [0, 1, 2, 10]) {
        yield* Assert.equal(yield* store.save(key, newEntry({ version }), "update"), false)
      }
      yield* Assert.equal(yield* store.fetch(key), Option.none())
      yield* Assert.equal(yield* store.list(key.user, farFuture - 1), [])
    })
  ),

  testCase(
    "update replaces every field of an existing entry",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      const before = newEntry()
      const after = newEntry({
        version: 1,
        userId: `${before.userId}-renamed`,
        createdAt: before.createdAt + 1,
        renewedAt: before.renewedAt + 2,
        extendedUntil: fartherFuture + 3,
        expiresAt: fartherFuture,
        lastSeenAt: before.lastSeenAt + 4,
        secret: `${before.secret}-renewed`,
        previous: before.secret,
        previousUntil: fartherFuture + 5,
        userAgent: "Mozilla/5.0 ünï ✓",
        address: "2001:db8::1",
        data: { csrf: "new", visits: 2 }
      })
      yield* Assert.equal(yield* store.save(key, before, "create"), true)
      yield* Assert.equal(yield* store.save(key, after, "update"), true)
      yield* Assert.equal(yield* store.fetch(key), Option.some(after))
    })
  ),

  testCase(
    "delete removes the entry, after which create works again",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      const entry = newEntry()
      yield* Assert.equal(yield* store.save(key, entry, "create"), true)
      yield* store.delete(key)
      yield* Assert.equal(yield* store.fetch(key), Option.none())
      yield* Assert.equal(yield* store.save(key, entry, "create"), true)
      yield* Assert.equal(yield* store.fetch(key), Option.some(entry))
    })
  ),

  testCase(
    "delete is idempotent",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      yield* store.delete(key)
      yield* Assert.equal(yield* store.save(key, newEntry(), "create"), true)
      yield* store.delete(key)
      yield* store.delete(key)
      yield* Assert.equal(yield* store.fetch(key), Option.none())
    })
  ),

  testCase(
    "update after delete is refused: a cleared entry is never brought back",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      const entry = newEntry()
      yield* Assert.equal(yield* store.save(key, entry, "create"), true)
      yield* store.delete(key)
      yield* Assert.equal(yield* store.save(key, nextVersion(entry, { expiresAt: fartherFuture }), "update"), false)
      yield* Assert.equal(yield* store.fetch(key), Option.none())
      yield* Assert.equal(yield* store.list(key.user, farFuture - 1), [])
    })
  ),

  testCase(
    "keys are independent: a shared part, a case difference or a longer part is another key",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      const keys: ReadonlyArray<Store.Key> = [
        key,
        { user: key.user, session: swapCase(key.session) },
        { user: key.user, session: `${key.session}x` },
        { user: key.user, session: key.session.slice(0, -1) },
        { user: swapCase(key.user), session: key.session },
        { user: `${key.user}x`, session: key.session },
        { user: key.user.slice(0, -1), session: key.session },
        { user: newUser(), session: key.session }
      ]
      const entries = keys.map(() => newEntry())
      for (let i = 0; i < keys.length; i++) {
        yield* Assert.equal(yield* store.save(keys[i]!, entries[i]!, "create"), true)
      }
      for (let i = 0; i < keys.length; i++) {
        yield* Assert.equal(yield* store.fetch(keys[i]!), Option.some(entries[i]!))
      }
      yield* store.delete(keys[0]!)
      yield* Assert.equal(yield* store.fetch(keys[0]!), Option.none())
      for (let i = 1; i < keys.length; i++) {
        yield* Assert.equal(yield* store.fetch(keys[i]!), Option.some(entries[i]!))
      }
    })
  ),

  testCase(
    "JSON-compatible data round-trips exactly",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const values: ReadonlyArray<unknown> = [
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
      for (const data of values) {
        const key = newKey()
        const entry = newEntry({ data })
        yield* Assert.equal(yield* store.save(key, entry, "create"), true)
        yield* Assert.equal(yield* store.fetch(key), Option.some(entry))
      }
    })
  ),

  testCase(
    "the store keeps any JSON data and any user id: garbage to a session schema round-trips exactly",
    Effect.gen(function*() {
      const store = yield* Store.Store
      let nested: unknown = "bottom"
      for (let i = 0; i < 64; i++) nested = [nested]
      const entries: ReadonlyArray<Store.Entry> = [
        // data that looks like a stored entry, or like its serialised form
        newEntry({ data: [1, "someone-else", 0, 1, null] }),
        newEntry({ data: "[1,\"someone-else\",0,1,null]" }),
        newEntry({ data: [2, 5, "someone-else", 0, 0, 1, 1, 0, 0, null, null, null] }),
        newEntry({ data: "[2,5,\"someone-else\",0,0,1,1,0,0,null,null,null]" }),
        newEntry({ data: [3, 5, 0, 0, 0, 0, 0, 0, "someone-else", "s", null, null, null, null] }),
        newEntry({ data: "[3,5,0,0,0,0,0,0,\"someone-else\",\"s\",null,null,null,null]" }),
        newEntry({ data: "not json {" }),
        // characters that mean something to a key layout or to JSON
        newEntry({ data: { "{": "}", ":": [], "": "", "\"": "\\", "key with spaces": "\u0000\u001f" } }),
        newEntry({ data: "\ud800 lone surrogate, \u2028 line separator" }),
        newEntry({ data: [1e308, 5e-324, -1.5e-7, Number.MAX_SAFE_INTEGER, 2 ** 60] }),
        newEntry({ data: nested }),
        newEntry({ userId: "", createdAt: 0, data: null }),
        newEntry({ userId: "{tag}:ünï 🍪 \"q\" \\ \n", createdAt: farFuture + 1, expiresAt: farFuture + 1 }),
        newEntry({ userAgent: "[2,5,{tag}:ünï 🍪 \"q\" \\ \n", address: "" }),
        newEntry({ userAgent: "", address: "null" }),
        newEntry({ secret: "", previous: "", previousUntil: 0 }),
        newEntry({ secret: "[3,1,2,3,", previous: "{tag}:\"q\" \\", previousUntil: farFuture + 2 })
      ]
      const user = newUser()
      const writes = entries.map((entry): Store.Listed => ({ key: newKey(user), entry }))
      yield* create(store, writes)
      for (const { entry, key } of writes) yield* Assert.equal(yield* store.fetch(key), Option.some(entry))
      yield* Assert.equal(bySession(yield* store.list(user, farFuture - 1)), bySession(writes))
    })
  ),

  testCase(
    "times keep millisecond precision",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      const entry = newEntry({ createdAt: farFuture - 1_234_567, expiresAt: farFuture + 789 })
      yield* Assert.equal(yield* store.save(key, entry, "create"), true)
      const fetched = yield* store.fetch(key)
      yield* Assert.equal(
        Option.map(fetched, (e) => [e.createdAt, e.expiresAt]),
        Option.some([farFuture - 1_234_567, farFuture + 789])
      )
    })
  ),

  testCase(
    "of concurrent creates of one key, exactly one wins and its entry is stored",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      const candidates = Array.from({ length: 20 }, () => newEntry())
      const results = yield* Effect.forEach(candidates, (entry) => store.save(key, entry, "create"), {
        concurrency: "unbounded"
      })
      yield* Assert.equal(results.filter((wrote) => wrote).length, 1)
      const winner = candidates[results.indexOf(true)]!
      yield* Assert.equal(yield* store.fetch(key), Option.some(winner))
      yield* Assert.equal(yield* store.list(key.user, farFuture - 1), [{ key, entry: winner }])
    })
  ),

  testCase(
    "concurrent creates of distinct keys all succeed",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const writes = Array.from({ length: 50 }, () => [newKey(), newEntry()] as const)
      const results = yield* Effect.forEach(writes, ([key, entry]) => store.save(key, entry, "create"), {
        concurrency: "unbounded"
      })
      yield* Assert.equal(results.every((wrote) => wrote), true)
      const fetched = yield* Effect.forEach(writes, ([key]) => store.fetch(key), { concurrency: "unbounded" })
      yield* Assert.equal(fetched, writes.map(([, entry]) => Option.some(entry)))
    })
  )
]
