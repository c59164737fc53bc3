/**
 * examples/api.ts over real sockets, with `fetch` as the client: the page and its script, login, `me`,
 * the session list, logout, revocation, "log out everywhere", the CSRF check and the OpenAPI document.
 *
 * One server for the whole file (one `layer(...)` block, see the header of src/testing/StoreContract.ts), on the
 * live clock: the client is a real one. Every test logs in its own users, so the tests do not depend on
 * each other.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { expect, layer } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Crypto from "node:crypto"
import * as Example from "../../examples/api.js"
import * as Auth from "../../src/Auth.js"

// -----------------------------------------------------------------------------
// the client
// -----------------------------------------------------------------------------

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: unknown
  /** The `session` cookie the response sets (`""` when it expires it), as a browser would store it. */
  readonly session: string | undefined
  readonly setCookie: string | undefined
}

const baseUrl = HttpServer.addressWith((address) =>
  address._tag === "TcpAddress"
    ? Effect.succeed(`http://${address.hostname}:${address.port}`)
    : Effect.dieMessage("expected a TCP address")
)

const request = (method: string, path: string, options: {
  readonly cookie?: string | undefined
  readonly headers?: Record<string, string>
  readonly json?: unknown
} = {}) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async (): Promise<Reply> => {
      const headers: Record<string, string> = { ...options.headers }
      if (options.cookie !== undefined) headers["cookie"] = options.cookie
      if (options.json !== undefined) headers["content-type"] = "application/json"
      const response = await fetch(url + path, {
        method,
        headers,
        redirect: "manual",
        ...(options.json !== undefined ? { body: JSON.stringify(options.json) } : {})
      })
      const text = await response.text()
      const isJson = response.headers.get("content-type")?.startsWith("application/json") ?? false
      const setCookie = response.headers.getSetCookie().find((line) => line.startsWith("session="))
      return {
        status: response.status,
        headers: response.headers,
        body: isJson && text !== "" ? JSON.parse(text) : text,
        setCookie,
        session: setCookie === undefined ? undefined : setCookie.slice("session=".length, setCookie.indexOf(";"))
      }
    }))

/** A browser of its own: a user agent and the cookie it holds. */
const browser = (userAgent: string) => {
  let cookie: string | undefined
  const send = (method: string, path: string, json?: unknown, headers: Record<string, string> = {}) =>
    Effect.map(
      request(method, path, {
        cookie,
        headers: { "user-agent": userAgent, "sec-fetch-site": "same-origin", ...headers },
        json
      }),
      (reply) => {
        if (reply.session !== undefined) cookie = reply.session === "" ? undefined : `session=${reply.session}`
        return reply
      }
    )
  return { send, cookie: () => cookie }
}

const uniqueUser = (name: string) => `${name}-${Crypto.randomBytes(4).toString("hex")}`

const isExpiring = (reply: Reply) =>
  reply.session === "" && /Max-Age=0|Expires=Thu, 01 Jan 1970/.test(reply.setCookie ?? "")

// -----------------------------------------------------------------------------
// the example on a free port, configured without touching process.env
// -----------------------------------------------------------------------------

const TestServer = Example.layer({ port: 0, host: "127.0.0.1" }).pipe(
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
    new Map([["SESSION_KEYS", Auth.randomId(48)], ["SESSION_TTL", "1 hour"]])
  )))
)

layer(TestServer, { excludeTestServices: true })("examples/api", (it) => {
  it.effect("GET / serves the page with the ids a browser test drives, and its script", () =>
    Effect.gen(function*() {
      const page = yield* request("GET", "/")
      expect(page.status).toBe(200)
      expect(page.headers.get("content-type")).toMatch(/^text\/html/)
      expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'")
      for (const id of ["user", "login", "me", "logout", "sessions", "logout-everywhere", "status"]) {
        expect(page.body).toContain(`id="${id}"`)
      }
      expect(page.body).toContain(`<script src="/app.js"></script>`)
      const script = yield* request("GET", "/app.js")
      expect(script.status).toBe(200)
      expect(script.headers.get("content-type")).toMatch(/^text\/javascript/)
      expect(script.body).toContain(`credentials: "same-origin"`)
      for (const path of ["/api/login", "/api/me", "/api/sessions", "/api/logout", "/api/logout-everywhere"]) {
        expect(script.body).toContain(path)
      }
    }))

  it.effect("login → me → sessions lists it with the user agent → logout → me 401", () =>
    Effect.gen(function*() {
      const name = uniqueUser("Alice")
      const alice = browser("Mozilla/5.0 (Example) Firefox/140.0")

      const login = yield* alice.send("POST", "/api/login", { user: name })
      expect(login.status).toBe(200)
      expect(login.body).toMatchObject({ user: name.toLowerCase(), name })
      // COOKIE_SECURE is unset and the server listens on loopback: no Secure, so plain http works
      expect(login.setCookie).toMatch(/; HttpOnly/)
      expect(login.setCookie).not.toMatch(/; Secure/)
      expect(alice.cookie()).toBeDefined()

      const me = yield* alice.send("GET", "/api/me")
      expect(me.status).toBe(200)
      expect(me.body).toMatchObject({ user: name.toLowerCase(), name })

      const listed = yield* alice.send("GET", "/api/sessions")
      expect(listed.status).toBe(200)
      const sessions = listed.body as ReadonlyArray<Record<string, unknown>>
      expect(sessions).toHaveLength(1)
      expect(sessions[0]).toMatchObject({
        current: true,
        userAgent: "Mozilla/5.0 (Example) Firefox/140.0",
        address: "127.0.0.1"
      })
      expect(Date.parse(sessions[0]!["createdAt"] as string)).toBeGreaterThan(Date.now() - 60_000)
      expect(Date.parse(sessions[0]!["lastSeenAt"] as string)).toBeGreaterThan(Date.now() - 60_000)

      const cookie = alice.cookie()
      const logout = yield* alice.send("POST", "/api/logout")
      expect(logout.status).toBe(204)
      expect(isExpiring(logout)).toBe(true)
      expect(alice.cookie()).toBeUndefined()
      expect((yield* alice.send("GET", "/api/me")).status).toBe(401)
      // the cookie from before the logout is dead too
      expect((yield* request("GET", "/api/me", { cookie })).status).toBe(401)
    }))

  it.effect("two logins → logout everywhere ends both; another user is untouched", () =>
    Effect.gen(function*() {
      const name = uniqueUser("bob")
      const laptop = browser("Laptop")
      const phone = browser("Phone")
      const other = browser("Other")
      expect((yield* laptop.send("POST", "/api/login", { user: name })).status).toBe(200)
      expect((yield* phone.send("POST", "/api/login", { user: name })).status).toBe(200)
      expect((yield* other.send("POST", "/api/login", { user: uniqueUser("carol") })).status).toBe(200)

      const listed = yield* phone.send("GET", "/api/sessions")
      const agents = listed.body as ReadonlyArray<{ userAgent: string; current: boolean }>
      expect(agents.map((s) => [s.userAgent, s.current])).toEqual([["Laptop", false], ["Phone", true]])

      const laptopCookie = laptop.cookie()
      const everywhere = yield* phone.send("POST", "/api/logout-everywhere")
      expect(everywhere.status).toBe(200)
      expect(everywhere.body).toEqual({ cleared: 2 })
      expect(isExpiring(everywhere)).toBe(true)
      expect((yield* phone.send("GET", "/api/me")).status).toBe(401)
      expect((yield* request("GET", "/api/me", { cookie: laptopCookie })).status).toBe(401)
      expect((yield* other.send("GET", "/api/me")).status).toBe(200)
    }))

  it.effect("revokes one session by the id the list shows, and only the user's own", () =>
    Effect.gen(function*() {
      const name = uniqueUser("dave")
      const laptop = browser("Laptop")
      const phone = browser("Phone")
      const mallory = browser("Mallory")
      yield* laptop.send("POST", "/api/login", { user: name })
      yield* phone.send("POST", "/api/login", { user: name })
      yield* mallory.send("POST", "/api/login", { user: uniqueUser("mallory") })
      const sessions = (yield* laptop.send("GET", "/api/sessions")).body as ReadonlyArray<
        { id: string; userAgent: string }
      >
      const phoneId = sessions.find((s) => s.userAgent === "Phone")!.id

      // another user cannot revoke it
      expect((yield* mallory.send("DELETE", `/api/sessions/${phoneId}`)).status).toBe(204)
      expect((yield* phone.send("GET", "/api/me")).status).toBe(200)

      const revoked = yield* laptop.send("DELETE", `/api/sessions/${phoneId}`)
      expect(revoked.status).toBe(204)
      expect(revoked.setCookie).toBeUndefined()
      expect((yield* phone.send("GET", "/api/me")).status).toBe(401)
      expect((yield* laptop.send("GET", "/api/me")).status).toBe(200)

      // revoking the current session is a logout
      const laptopId = sessions.find((s) => s.userAgent === "Laptop")!.id
      const self = yield* laptop.send("DELETE", `/api/sessions/${laptopId}`)
      expect(self.status).toBe(204)
      expect(isExpiring(self)).toBe(true)
      expect((yield* laptop.send("GET", "/api/me")).status).toBe(401)
    }))

  it.effect("refuses cross-site state-changing requests with 403, before touching the session", () =>
    Effect.gen(function*() {
      const erin = browser("Erin")
      yield* erin.send("POST", "/api/login", { user: uniqueUser("erin") })
      const crossSite = { "sec-fetch-site": "cross-site" }
      const logout = yield* erin.send("POST", "/api/logout", undefined, crossSite)
      expect(logout.status).toBe(403)
      expect(logout.body).toEqual({ _tag: "CsrfRejected", reason: "CrossSite" })
      expect(logout.setCookie).toBeUndefined()
      expect((yield* erin.send("POST", "/api/logout-everywhere", undefined, crossSite)).status).toBe(403)
      // an old browser without Sec-Fetch-Site, on a page of another origin
      const foreign = yield* request("POST", "/api/logout", {
        cookie: erin.cookie(),
        headers: { origin: "https://evil.example" }
      })
      expect(foreign.status).toBe(403)
      // login CSRF: another site cannot log the browser into an account of its choosing
      const forcedLogin = yield* request("POST", "/api/login", { headers: crossSite, json: { user: "attacker" } })
      expect(forcedLogin.status).toBe(403)
      expect(forcedLogin.setCookie).toBeUndefined()
      // the session survived all of it; a cross-site GET (a link) is not refused
      expect((yield* erin.send("GET", "/api/me", undefined, crossSite)).status).toBe(200)
    }))

  it.effect("answers 401 without a session and 400 to an unusable user name", () =>
    Effect.gen(function*() {
      const me = yield* request("GET", "/api/me")
      expect(me.status).toBe(401)
      expect(me.body).toEqual({ _tag: "Unauthorized" })
      expect((yield* request("GET", "/api/me", { cookie: "session=forged.token" })).status).toBe(401)
      for (const user of ["", "   ", "x".repeat(65), "<script>"]) {
        expect((yield* request("POST", "/api/login", { json: { user } })).status).toBe(400)
      }
    }))

  it.effect("serves the OpenAPI document with the session cookie scheme on the guarded endpoints", () =>
    Effect.gen(function*() {
      const reply = yield* request("GET", "/openapi.json")
      expect(reply.status).toBe(200)
      const spec = reply.body as {
        components: { securitySchemes: Record<string, unknown> }
        paths: Record<string, Record<string, { security: ReadonlyArray<unknown>; responses: Record<string, unknown> }>>
      }
      expect(spec.components.securitySchemes["session"]).toMatchObject({
        type: "apiKey",
        in: "cookie",
        name: "session"
      })
      expect(spec.paths["/api/me"]!["get"]!.security).toEqual([{ session: [] }])
      expect(Object.keys(spec.paths["/api/me"]!["get"]!.responses)).toEqual(expect.arrayContaining(["401", "503"]))
      expect(spec.paths["/api/login"]!["post"]!.security).toEqual([])
      expect(Object.keys(spec.paths["/api/login"]!["post"]!.responses)).toContain("403")
    }))
})
