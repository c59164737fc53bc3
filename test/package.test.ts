/**
 * The published package as a user gets it: `npm pack` (which builds through `prepack`) in a copy of the
 * checkout without `dist/`, the tarball unpacked into a fresh project's `node_modules`, then a plain
 * JavaScript program run by node and a TypeScript consumer type-checked, both importing through the
 * exports map.
 *
 * The pack runs in a copy so that the test never deletes or rewrites the `dist/` of the working tree,
 * which a concurrent `npm run build` may be using. The fresh project is offline: its dependencies are links
 * to this checkout's `node_modules`, one for each dependency and peer the packed `package.json` declares,
 * so a package the build imports without declaring it fails to resolve here as it would for a user.
 * (`npm install <tarball> --offline` would need package metadata that `npm ci` does not cache.)
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import { builtinModules } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { pack, repo, run } from "./support/pack.js"

const tsc = Path.join(repo, "node_modules", "typescript", "bin", "tsc")

let tmp: string
let consumer: string
let tarballFiles: ReadonlyArray<string>
let packed: {
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
}

// The public module names: `Session`, `layers/Memory`, ... (one per `.ts` file under `src/`).
const sourceModules = (dir = Path.join(repo, "src"), prefix = ""): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceModules(Path.join(dir, entry.name), `${prefix}${entry.name}/`)
      : entry.name.endsWith(".ts")
      ? [`${prefix}${entry.name.slice(0, -3)}`]
      : []
  )

// The package a bare specifier names: `effect/Effect` → `effect`, `@effect/platform/Cookies` → `@effect/platform`.
const packageOf = (specifier: string) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/")

const linkDependency = (name: string) => {
  const link = Path.join(consumer, "node_modules", name)
  Fs.mkdirSync(Path.dirname(link), { recursive: true })
  Fs.symlinkSync(Path.join(repo, "node_modules", name), link, "junction")
}

beforeAll(async () => {
  tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-sessions-pack-"))
  const tarball = await pack(tmp)

  const { stdout } = await run("tar", ["-tzf", tarball], tmp)
  tarballFiles = stdout.split("\n").filter((line) => line !== "").map((line) => line.replace(/^package\//, ""))

  consumer = Path.join(tmp, "consumer")
  const installed = Path.join(consumer, "node_modules", "effect-sessions")
  Fs.mkdirSync(installed, { recursive: true })
  await run("tar", ["-xzf", tarball, "-C", installed, "--strip-components=1"], tmp)
  packed = JSON.parse(Fs.readFileSync(Path.join(installed, "package.json"), "utf8"))
  for (const name of Object.keys({ ...packed.dependencies, ...packed.peerDependencies })) linkDependency(name)
  // the user's own typings of Node.js, for the TypeScript consumer
  linkDependency("@types/node")
  Fs.writeFileSync(
    Path.join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2)
  )
}, 90_000)

afterAll(() => {
  if (tmp !== undefined) Fs.rmSync(tmp, { recursive: true, force: true })
})

describe("the packed package", () => {
  it("holds ESM JavaScript, declarations and maps for every module, and no tests, benchmarks or examples", () => {
    for (const module of sourceModules()) {
      for (const suffix of [".js", ".js.map", ".d.ts", ".d.ts.map"]) {
        expect(tarballFiles).toContain(`dist/${module}${suffix}`)
      }
      // the maps point at the sources, so they ship too
      expect(tarballFiles).toContain(`src/${module}.ts`)
    }
    for (const file of tarballFiles) {
      expect(file).toMatch(/^(dist\/|src\/|package\.json$|README\.md$|LICENSE)/)
    }
  })

  it("declares every package its JavaScript imports", () => {
    const declared = new Set(Object.keys({ ...packed.dependencies, ...packed.peerDependencies }))
    const builtins = new Set(builtinModules)
    const undeclared = new Set<string>()
    for (const file of tarballFiles.filter((name) => name.endsWith(".js"))) {
      const code = Fs.readFileSync(Path.join(consumer, "node_modules", "effect-sessions", file), "utf8")
      // Only statements at the start of a line: the JSDoc examples also say `import ... from "..."`.
      for (const [, specifier] of code.matchAll(/^(?:import|export)\s(?:[^;"']*?\sfrom\s*)?["']([^"']+)["']/gm)) {
        if (specifier!.startsWith(".") || specifier!.startsWith("node:") || builtins.has(specifier!)) continue
        if (!declared.has(packageOf(specifier!))) undeclared.add(specifier!)
      }
    }
    expect([...undeclared]).toEqual([])
  })

  it("runs a JavaScript program that imports it by its public names", async () => {
    Fs.writeFileSync(
      Path.join(consumer, "index.mjs"),
      `import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Auth from "effect-sessions/Auth"
import * as Session from "effect-sessions/Session"
import * as Memory from "effect-sessions/layers/Memory"

class AppSession extends Session.Tag()("consumer/Session", { data: Schema.Struct({ role: Schema.String }) }) {}

const program = Effect.gen(function*() {
  const sessions = yield* AppSession
  const { token } = yield* sessions.issue("user-42", { role: "admin" })
  const session = yield* sessions.get(token)
  return session.userId + " " + session.data.role
})

const SessionsLive = Session.layer(AppSession).pipe(
  Layer.provide(Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] })),
  Layer.provide(Memory.layer())
)

console.log(await Effect.runPromise(Effect.provide(program, SessionsLive)))

// every public module loads (layers/Redis included: ioredis is an installed peer here)
for (const name of JSON.parse(process.argv[2])) await import("effect-sessions/" + name)
// and nothing outside the exports map does
await import("effect-sessions/dist/Session.js").then(() => console.log("dist/Session.js exported"), (e) => console.log(e.code))
`
    )
    // `internal/` is machinery the public modules share: shipped (the maps point at it), never exported;
    // `testing/StoreContract` registers vitest tests, so it loads under vitest only (the next test runs it)
    const publicModules = sourceModules().filter((name) =>
      !name.startsWith("internal/") && name !== "testing/StoreContract"
    )
    const { stdout } = await run(process.execPath, ["index.mjs", JSON.stringify(publicModules)], consumer, 30_000)
    expect(stdout).toBe("user-42 admin\nERR_PACKAGE_PATH_NOT_EXPORTED\n")
  })

  it("runs the shipped Store contract under the consumer's own vitest", async () => {
    Fs.writeFileSync(
      Path.join(consumer, "store.test.ts"),
      `import * as Memory from "effect-sessions/layers/Memory"
import * as StoreContract from "effect-sessions/testing/StoreContract"

// one clause is enough to show that the suite loads and runs from the package
StoreContract.suite("memory", Memory.layer(), {
  cases: StoreContract.cases.filter((c) => c.clause === "fetch, save and delete")
})
`
    )
    const cases = String(
      (await import("../src/testing/StoreContract.js")).cases.filter((c) => c.clause === "fetch, save and delete")
        .length
    )
    const vitest = Path.join(consumer, "node_modules", "vitest", "vitest.mjs")
    const { stdout } = await run(process.execPath, [vitest, "run", "store.test.ts"], consumer, 60_000)
    expect(stdout.replace(/\u001b\[[0-9;]*m/g, "")).toMatch(new RegExp(`Tests\\s+${cases} passed \\(${cases}\\)`))
  }, 60_000)

  it("type-checks a strict TypeScript consumer against its declarations", async () => {
    Fs.writeFileSync(
      Path.join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          types: ["node"],
          strict: true,
          exactOptionalPropertyTypes: true,
          noEmit: true
        },
        files: ["main.ts"]
      })
    )
    Fs.writeFileSync(
      Path.join(consumer, "main.ts"),
      `import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Auth from "effect-sessions/Auth"
import * as Session from "effect-sessions/Session"
import * as Store from "effect-sessions/Store"
import * as Transport from "effect-sessions/Transport"
import * as SessionHttp from "effect-sessions/layers/Http"
import * as Memory from "effect-sessions/layers/Memory"
import * as Redis from "effect-sessions/layers/Redis"

class AppSession extends Session.Tag<AppSession>()("consumer/Session", {
  data: Schema.Struct({ role: Schema.Literal("user", "admin") })
}) {}

export const program: Effect.Effect<string, Session.Rejected | Store.StoreError, AppSession> = Effect.gen(function*() {
  const sessions = yield* AppSession
  const { token } = yield* sessions.issue("user-42", { role: "admin" })
  const session = yield* sessions.get(token)
  const role: "user" | "admin" = session.data.role
  return session.userId + " " + role
})

// @ts-expect-error the data schema types what a session may hold
export const refused = Effect.flatMap(AppSession, (sessions) => sessions.issue("user-42", { role: "root" }))

export const SessionsLive: Layer.Layer<AppSession, unknown> = Session.layer(AppSession).pipe(
  Layer.provide(Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] })),
  Layer.provide(Memory.layer())
)

export const layers = [Transport.layerCookie(), Redis.layer({ url: "redis://127.0.0.1:6379" })] as const
export const AppHttp = SessionHttp.make(AppSession)
`
    )
    // type-checking Effect's declarations takes a consumer's tsc 10 to 20 s alone, several times that on a
    // loaded machine
    await run(process.execPath, [tsc, "-p", "tsconfig.json"], consumer, 150_000)
  }, 180_000)

  it("type-checks a store author's contract test against its declarations", async () => {
    // with skipLibCheck, as a project with vitest has it: checking vitest's own declarations (and vite's
    // under them) takes a minute and says nothing about this package
    Fs.writeFileSync(
      Path.join(consumer, "tsconfig.testing.json"),
      JSON.stringify({
        extends: "./tsconfig.json",
        compilerOptions: { skipLibCheck: true },
        files: ["contract.test.ts"]
      })
    )
    Fs.writeFileSync(
      Path.join(consumer, "contract.test.ts"),
      `import * as Effect from "effect/Effect"
import * as Memory from "effect-sessions/layers/Memory"
import * as StoreContract from "effect-sessions/testing/StoreContract"

StoreContract.suite("memory", Memory.layer())

// one case, run by hand: a failure with a ContractViolation means the store broke the case's clause
export const one: Effect.Effect<boolean> = Effect.map(
  StoreContract.run(StoreContract.cases[0]!, Memory.layer()),
  (exit) => exit._tag === "Success"
)
export const clause: StoreContract.Clause = StoreContract.cases[0]!.clause
`
    )
    await run(process.execPath, [tsc, "-p", "tsconfig.testing.json"], consumer, 150_000)
  }, 180_000)
})
