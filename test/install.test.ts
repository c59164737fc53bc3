/**
 * The README's install lines, pasted verbatim into fresh projects, against the packed package (the only
 * change: `effect-sessions` names the tarball, since the package is not on the registry from here). They
 * must install with plain npm (no `--legacy-peer-deps`, no `--force`), leave `npm ls --all` clean, and give
 * a program that uses the memory and Redis stores: with ioredis 5 (the README's default), and with ioredis
 * 6 after the README's one `overrides` entry.
 *
 * This installs from the npm registry (through npm's cache), as a user does: without it the test fails
 * with npm's own error.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { pack, repo, run } from "./support/pack.js"
import { startRedis } from "./support/redis.js"

const readme = Fs.readFileSync(Path.join(repo, "README.md"), "utf8")

/** The fenced blocks of `language` in the README's section `heading`, in order. */
const blocks = (heading: string, language: string): Array<string> => {
  const start = readme.indexOf(`\n${heading}\n`)
  expect(start).toBeGreaterThan(0)
  const end = readme.indexOf("\n## ", start + heading.length + 2)
  const section = readme.slice(start, end < 0 ? undefined : end)
  return [...section.matchAll(new RegExp("```" + language + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]!)
}

/** The commands of a shell block, comments dropped, as argument lists. */
const commands = (block: string) =>
  block.split("\n").map((line) => line.replace(/#.*$/, "").trim()).filter((line) => line !== "").map((line) =>
    line.split(/\s+/)
  )

const [installBlock, override, ioredis6Block] = [
  blocks("## Install", "sh")[0]!,
  blocks("## Install", "json")[0]!,
  blocks("## Install", "sh")[1]!
]

let tmp: string
let tarball: string

beforeAll(async () => {
  tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-sessions-install-"))
  tarball = await pack(tmp)
}, 120_000)

afterAll(() => {
  if (tmp !== undefined) Fs.rmSync(tmp, { recursive: true, force: true })
})

/** A fresh project with nothing installed. */
const project = (name: string) => {
  const dir = Path.join(tmp, name)
  Fs.mkdirSync(dir)
  Fs.writeFileSync(Path.join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }, null, 2))
  return dir
}

/** Runs a README block's npm commands in `dir`, each as written but for the tarball. */
const install = async (dir: string, block: string) => {
  for (const [npm, ...args] of commands(block)) {
    expect(npm).toBe("npm")
    const argv = args.map((arg) => arg === "effect-sessions" ? tarball : arg)
    await run("npm", [...argv, "--no-audit", "--no-fund", "--loglevel=error"], dir, 240_000)
  }
  // clean: no missing, extraneous or invalid package, peers included
  await run("npm", ["ls", "--all"], dir)
}

const program = `
import { Effect, Layer, Redacted, Schema } from "effect"
import * as Auth from "effect-sessions/Auth"
import * as Memory from "effect-sessions/layers/Memory"
import * as Redis from "effect-sessions/layers/Redis"
import * as Session from "effect-sessions/Session"

class AppSession extends Session.Tag()("app/Session", { data: Schema.Struct({ n: Schema.Number }) }) {}
const roundTrip = (store) =>
  Effect.gen(function*() {
    const sessions = yield* AppSession
    const { token } = yield* sessions.issue("u1", { n: 42 })
    return (yield* sessions.get(token)).data.n
  }).pipe(
    Effect.provide(Session.layer(AppSession).pipe(
      Layer.provide(store),
      Layer.provide(Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] }))
    ))
  )
const { version } = (await import("ioredis/package.json", { with: { type: "json" } })).default
const answers = await Effect.runPromise(Effect.all([roundTrip(Memory.layer()), roundTrip(Redis.layer({ url: process.argv[2] }))]))
console.log(version.split(".")[0], answers.join(" "))
`

const runProgram = (dir: string, url: string) =>
  Effect.promise(async () => {
    Fs.writeFileSync(Path.join(dir, "main.mjs"), program)
    return (await run(process.execPath, ["main.mjs", url], dir)).stdout.trim()
  })

describe("the README's install lines, in a fresh project", () => {
  it.scoped(
    "install with plain npm, npm ls is clean, and the memory and Redis stores work on ioredis 5",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis()
        const dir = project("with-ioredis-5")
        yield* Effect.promise(() => install(dir, installBlock))
        expect(yield* runProgram(dir, `redis://${redis.host}:${redis.port}`)).toBe("5 42 42")
      }),
    300_000
  )

  it.scoped("and with ioredis 6 after the README's override", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis()
      const dir = project("with-ioredis-6")
      yield* Effect.promise(() => install(dir, installBlock))
      const manifest = JSON.parse(Fs.readFileSync(Path.join(dir, "package.json"), "utf8"))
      Fs.writeFileSync(Path.join(dir, "package.json"), JSON.stringify({ ...manifest, ...JSON.parse(override) }))
      yield* Effect.promise(() => install(dir, ioredis6Block))
      expect(yield* runProgram(dir, `redis://${redis.host}:${redis.port}`)).toBe("6 42 42")
    }), 300_000)
})
