import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it, layer } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fc from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import * as Csrf from "../../examples/csrf.js"
import * as Auth from "../../src/Auth.js"

// -----------------------------------------------------------------------------
// a tiny HTTP client over real sockets
// -----------------------------------------------------------------------------

interface SetCookie {
  readonly value: string
  /** Attribute names in lower case; flags such as `HttpOnly` map to `""`. */
  readonly attributes: ReadonlyMap<string, string>
}

interface Reply {
  readonly status: number
  readonly cookies: ReadonlyMap<string, SetCookie>
}

const parseSetCookie = (header: string): [string, SetCookie] => {
  const [pair = "", ...rest] = header.split(";").map((part) => part.trim())
  const eq = pair.indexOf("=")
  const attributes = new Map<string, string>()
  for (const attribute of rest) {
    const at = attribute.indexOf("=")
    if (at === -1) attributes.set(attribute.toLowerCase(), "")
    else attributes.set(attribute.slice(0, at).toLowerCase(), attribute.slice(at + 1))
  }
  return [pair.slice(0, eq), { value: pair.slice(eq + 1), attributes }]
}

const request = (baseUrl: string, path: string, headers: Record<string, string> = {}) =>
  Effect.tryPromise(async (): Promise<Reply> => {
    const response = await fetch(baseUrl + path, { redirect: "manual", headers })
    await response.arrayBuffer()
    return { status: response.status, cookies: new Map(response.headers.getSetCookie().map(parseSetCookie)) }
  })

const baseUrl = HttpServer.addressWith((address) =>
  address._tag === "TcpAddress"
    ? Effect.succeed(`http://${address.hostname}:${address.port}`)
    : Effect.dieMessage("expected a TCP address")
)

const get = (path: string, headers: Record<string, string> = {}) =>
  Effect.flatMap(baseUrl, (url) => Effect.orDie(request(url, path, headers)))

const cookie = (reply: Reply, name: string): SetCookie => {
  const found = reply.cookies.get(name)
  expect(found, `Set-Cookie ${name}`).toBeDefined()
  return found!
}

const expiresAt = (set: SetCookie): number => Date.parse(set.attributes.get("expires") ?? "")

const isExpired = (set: SetCookie, now: number): boolean =>
  set.attributes.get("max-age") === "0" || expiresAt(set) <= now

/** What a browser sends back after `reply`: both cookies, and the csrf token copied into the header. */
const credentials = (reply: Reply) => {
  const session = cookie(reply, "session").value
  const csrf = cookie(reply, "csrf").value
  return { cookie: `session=${session}; csrf=${csrf}`, csrf }
}

// -----------------------------------------------------------------------------
// the example on a free port, configured without touching process.env
// -----------------------------------------------------------------------------

const ttlSeconds = 10

const TestServer = Csrf.layer({ port: 0, host: "127.0.0.1" }).pipe(
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
    new Map([
      ["SESSION_KEYS", `${Auth.randomId(48)},${Auth.randomId(48)}`],
      ["SESSION_TTL", `${ttlSeconds} seconds`],
      ["COOKIE_SECURE", "false"]
    ])
  )))
)

// Live services: the server's clock must be the real one, since the client is a real one.
layer(TestServer, { excludeTestServices: true })("examples/csrf", (it) => {
  it.effect("GET /issue sets an HttpOnly session cookie and a readable csrf cookie with the same attributes", () =>
    Effect.gen(function*() {
      const before = Date.now()
      const reply = yield* get("/issue")
      expect(reply.status).toBe(200)
      const session = cookie(reply, "session")
      const csrf = cookie(reply, "csrf")
      expect(session.value).toMatch(/^[\w-]+\.[\w-]{86}$/)
      expect(csrf.value).toMatch(/^[\w-]{43}$/)
      expect(session.attributes.has("httponly")).toBe(true)
      expect(csrf.attributes.has("httponly")).toBe(false)
      // COOKIE_SECURE=false came from the ConfigProvider
      expect(session.attributes.has("secure")).toBe(false)
      expect(csrf.attributes.has("secure")).toBe(false)
      expect(csrf.attributes.get("path")).toBe(session.attributes.get("path"))
      expect(csrf.attributes.get("expires")).toBe(session.attributes.get("expires"))
      // SESSION_TTL came from the ConfigProvider: Expires has second resolution
      expect(expiresAt(session)).toBeGreaterThan(before + (ttlSeconds - 2) * 1000)
      expect(expiresAt(session)).toBeLessThanOrEqual(Date.now() + ttlSeconds * 1000)
      expect(Number(session.attributes.get("max-age"))).toBeGreaterThanOrEqual(ttlSeconds - 1)
      expect(Number(session.attributes.get("max-age"))).toBeLessThanOrEqual(ttlSeconds)
    }))

  it.effect("GET /issue hands out a different session and csrf token every time", () =>
    Effect.gen(function*() {
      const a = credentials(yield* get("/issue"))
      const b = credentials(yield* get("/issue"))
      expect(a.cookie).not.toBe(b.cookie)
      expect(a.csrf).not.toBe(b.csrf)
    }))

  it.effect("GET /require with the cookie and a matching X-CSRF-Token extends the session and both cookies", () =>
    Effect.gen(function*() {
      const issued = yield* get("/issue")
      const { cookie: jar, csrf } = credentials(issued)
      // Expires has second resolution: wait past the next second so the later expiry shows.
      yield* Effect.sleep(Duration.millis(1100))
      const extended = yield* get("/require", { cookie: jar, "x-csrf-token": csrf })
      expect(extended.status).toBe(200)
      const session = cookie(extended, "session")
      const csrfCookie = cookie(extended, "csrf")
      expect(expiresAt(session)).toBeGreaterThan(expiresAt(cookie(issued, "session")))
      expect(session.attributes.has("httponly")).toBe(true)
      expect(csrfCookie.value).toBe(csrf)
      expect(csrfCookie.attributes.has("httponly")).toBe(false)
      expect(csrfCookie.attributes.get("expires")).toBe(session.attributes.get("expires"))
      expect(csrfCookie.attributes.get("path")).toBe(session.attributes.get("path"))
      // the extended session keeps working with the cookies it was given
      const again = yield* get("/require", { cookie: credentials(extended).cookie, "x-csrf-token": csrf })
      expect(again.status).toBe(200)
    }))

  it.effect("GET /require answers 401 to a wrong or missing X-CSRF-Token, and keeps the session", () =>
    Effect.gen(function*() {
      const { cookie: jar, csrf } = credentials(yield* get("/issue"))
      const other = credentials(yield* get("/issue")).csrf
      const wrong = [
        Auth.randomId(), // same length, wrong value
        other, // another session's token
        csrf.slice(0, -1), // a prefix
        `${csrf}x`, // longer
        csrf.toLowerCase() === csrf ? csrf.toUpperCase() : csrf.toLowerCase(),
        ""
      ]
      for (const header of wrong) {
        expect((yield* get("/require", { cookie: jar, "x-csrf-token": header })).status).toBe(401)
        expect((yield* get("/clear", { cookie: jar, "x-csrf-token": header })).status).toBe(401)
      }
      const missing = yield* get("/require", { cookie: jar })
      expect(missing.status).toBe(401)
      expect(missing.cookies.size).toBe(0)
      expect((yield* get("/clear", { cookie: jar })).status).toBe(401)
      // a failed check neither extends nor ends the session
      expect((yield* get("/require", { cookie: jar, "x-csrf-token": csrf })).status).toBe(200)
    }))

  it.effect("GET /require and /clear answer 401 without a session cookie", () =>
    Effect.gen(function*() {
      const { csrf } = credentials(yield* get("/issue"))
      expect((yield* get("/require")).status).toBe(401)
      expect((yield* get("/require", { "x-csrf-token": csrf })).status).toBe(401)
      expect((yield* get("/require", { cookie: `csrf=${csrf}`, "x-csrf-token": csrf })).status).toBe(401)
      expect((yield* get("/clear", { cookie: `csrf=${csrf}`, "x-csrf-token": csrf })).status).toBe(401)
    }))

  it.effect("GET /clear ends the session and expires both cookies; the old cookie is then refused", () =>
    Effect.gen(function*() {
      const { cookie: jar, csrf } = credentials(yield* get("/issue"))
      const cleared = yield* get("/clear", { cookie: jar, "x-csrf-token": csrf })
      expect(cleared.status).toBe(200)
      const now = Date.now()
      const session = cookie(cleared, "session")
      const csrfCookie = cookie(cleared, "csrf")
      expect(session.value).toBe("")
      expect(csrfCookie.value).toBe("")
      expect(isExpired(session, now)).toBe(true)
      expect(isExpired(csrfCookie, now)).toBe(true)
      expect(csrfCookie.attributes.get("path")).toBe(session.attributes.get("path"))
      // replaying the cookie from before the logout
      const replayed = yield* get("/require", { cookie: jar, "x-csrf-token": csrf })
      expect(replayed.status).toBe(401)
      expect(isExpired(cookie(replayed, "session"), Date.now())).toBe(true)
      expect((yield* get("/clear", { cookie: jar, "x-csrf-token": csrf })).status).toBe(401)
    }))

  it.effect("answers 404 to other paths and methods", () =>
    Effect.gen(function*() {
      expect((yield* get("/")).status).toBe(404)
      expect((yield* get("/issues")).status).toBe(404)
      expect((yield* get("/nope")).status).toBe(404)
      const url = yield* baseUrl
      const post = yield* Effect.promise(() => fetch(`${url}/issue`, { method: "POST", redirect: "manual" }))
      expect(post.status).toBe(404)
    }))

  // Anything a client can put in the cookie header is "no session": never a 5xx, never a session.
  const percentEncode = (s: string) =>
    Array.from(
      Buffer.from(s, "utf8"),
      (b) => /[\w.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, "0")}`
    )
      .join("")
  const printableAscii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) })
  const base64Url = (length: number) =>
    fc.string({
      unit: fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      minLength: length,
      maxLength: length
    })
  const garbageCookie = fc.oneof(
    // any Unicode text (lone surrogates included), percent-encoded
    fc.string({ unit: "binary" }).map((s) => `session=${percentEncode(s)}`),
    // raw printable ASCII as the session value, including bad %-escapes, quotes, `;` and `=`
    printableAscii.map((s) => `session=${s}`),
    // a whole raw cookie header
    printableAscii,
    // token-shaped: an id, a dot and 86 base64url characters, so the HMAC is really checked
    fc.tuple(base64Url(43), base64Url(86)).map(([id, mac]) => `session=${id}.${mac}`),
    // oversized
    fc.integer({ min: 500, max: 4000 }).map((n) => `session=${"a".repeat(n)}.${"b".repeat(86)}`)
  )

  it.effect.prop(
    "garbage session cookies never produce a 5xx",
    { header: garbageCookie, path: fc.constantFrom("/require", "/clear", "/issue"), csrf: printableAscii },
    ({ csrf, header, path }) =>
      Effect.gen(function*() {
        const reply = yield* get(path, { cookie: header, "x-csrf-token": csrf })
        if (path === "/issue") {
          // the bad cookie is replaced by a fresh session
          expect(reply.status).toBe(200)
          expect(cookie(reply, "session").value).not.toBe("")
        } else {
          expect(reply.status).toBe(401)
        }
      }),
    { fastCheck: { numRuns: 300 } }
  )
})

// -----------------------------------------------------------------------------
// `npm start`, as a user runs it
// -----------------------------------------------------------------------------

const root = fileURLToPath(new URL("../../", import.meta.url))

const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

// Starts `node --import tsx examples/csrf.ts` (what `npm start` runs, without npm's extra process, so the
// pid is the server's), and kills it when the scope closes, whatever happened.
const startExample = (env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const { SESSION_KEYS: _, ...inherited } = process.env
      const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", "examples/csrf.ts"], {
        cwd: root,
        env: { ...inherited, ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout.on("data", (chunk) => output += String(chunk))
      child.stderr.on("data", (chunk) => output += String(chunk))
      return { child, output: () => output }
    }),
    ({ child }) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        const force = setTimeout(() => child.kill("SIGKILL"), 5000)
        child.once("exit", () => {
          clearTimeout(force)
          resume(Effect.void)
        })
        child.kill("SIGTERM")
      })
  )

describe("examples/csrf.ts started as a process", () => {
  it.scopedLive("serves /issue on PORT with a random key when SESSION_KEYS is unset", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const { child, output } = yield* startExample({ PORT: String(port), COOKIE_SECURE: "false" })
      const url = `http://127.0.0.1:${port}`
      const exited = Effect.suspend(() =>
        child.exitCode !== null ? Effect.dieMessage(`the example exited early:\n${output()}`) : Effect.void
      )
      const reply = yield* exited.pipe(
        Effect.zipRight(request(url, "/issue")),
        Effect.retry({ schedule: Schedule.spaced(Duration.millis(100)), while: () => child.exitCode === null }),
        Effect.timeoutFail({ duration: Duration.seconds(20), onTimeout: () => new Error(`no answer:\n${output()}`) })
      )
      expect(reply.status).toBe(200)
      expect(cookie(reply, "session").attributes.has("httponly")).toBe(true)
      expect(cookie(reply, "session").attributes.has("secure")).toBe(false)
      expect(cookie(reply, "csrf").attributes.has("httponly")).toBe(false)
      const { cookie: jar, csrf } = credentials(reply)
      expect((yield* Effect.orDie(request(url, "/require", { cookie: jar, "x-csrf-token": csrf }))).status).toBe(200)
      // the logs are written before the first answer, but may reach the pipe after it
      yield* Effect.suspend(() =>
        output().includes(`Listening on http://127.0.0.1:${port}`) ? Effect.void : Effect.fail("no address yet")
      ).pipe(Effect.retry({ schedule: Schedule.spaced(Duration.millis(50)), times: 40 }), Effect.orDie)
      expect(output()).toContain("SESSION_KEYS is not set")
    }), 30_000)
})
