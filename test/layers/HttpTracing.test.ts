/**
 * No token reaches a trace or a log (issue 10, item 2). A real OpenTelemetry SDK (in-memory span
 * exporter) records the platform's HTTP tracer spans (`HttpServer.serve` on a Node server on a loopback
 * port, `fetch` as the client) and the sessions' own spans; a logger keeps every log line. One client
 * script runs every operation (issue, read by the middleware, login over a session, extend, update,
 * rotate, automatic renewal, re-signing after a signing-key rotation, list, revoke, clearOthers, clearAll,
 * clear, refused and forged tokens, a store outage, the CSRF checks), for the cookie transport, the header
 * transport with `Authorization: Bearer` and the header transport on a named header. Then no 16-character
 * window of any token the server handed out (or the client sent) may appear in any span (name, attribute,
 * event, status), log line or error body.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Logger, Redacted, Schema, TestClock } from "effect"
import * as Http from "node:http"
import * as Auth from "../../src/Auth.js"
import * as Csrf from "../../src/layers/Csrf.js"
import * as SessionHttp from "../../src/layers/Http.js"
import * as SessionsTest from "../../src/layers/Test.js"
import * as Session from "../../src/Session.js"
import { Store } from "../../src/Store.js"
import * as Transport from "../../src/Transport.js"

class AppSession extends Session.Tag<AppSession>()("test/HttpTracing/AppSession", {
  data: Schema.Struct({ csrf: Schema.String, n: Schema.Number })
}) {}

/** Only there to build the test layer's store, outage switch and cookie transport. */
class Scratch extends Session.Tag<Scratch>()("test/HttpTracing/Scratch", { data: Schema.Struct({}) }) {}

const AppHttp = SessionHttp.make(AppSession)

const options: Session.Options = { ttl: "1 hour", renewalInterval: "15 minutes", rolling: true }

// The deployment signs with K2 and still accepts K1: a token signed with K1 is re-signed.
const key1 = Redacted.make(Auth.randomId(48))
const key2 = Redacted.make(Auth.randomId(48))

const text = (body: string) => HttpServerResponse.text(body)

const router = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/login/:user",
    Effect.gen(function*() {
      const { user } = yield* HttpRouter.params
      yield* AppHttp.issue(user!, { csrf: Csrf.token(), n: 0 })
      return text("in")
    })
  ),
  HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => text(session.userId))),
  HttpRouter.get("/extend", Effect.as(Effect.flatMap(AppHttp.require, AppHttp.extend), text("extended"))),
  HttpRouter.get(
    "/increment",
    Effect.map(
      Effect.flatMap(AppHttp.require, (session) => AppHttp.update(session, (data) => ({ ...data, n: data.n + 1 }))),
      (session) => text(String(session.data.n))
    )
  ),
  HttpRouter.get("/rotate", Effect.as(Effect.flatMap(AppHttp.require, AppHttp.rotate), text("rotated"))),
  HttpRouter.get(
    "/sessions",
    Effect.gen(function*() {
      const session = yield* AppHttp.require
      const listed = yield* (yield* AppSession).list(session.userId)
      return HttpServerResponse.unsafeJson(listed.map((info) => ({ session: info.key.session, current: false })))
    })
  ),
  HttpRouter.get(
    "/revoke/:session",
    Effect.gen(function*() {
      const session = yield* AppHttp.require
      const { session: revoked } = yield* HttpRouter.params
      yield* (yield* AppSession).revoke(session.userId, revoked!)
      return text("revoked")
    })
  ),
  HttpRouter.get(
    "/others",
    Effect.flatMap(
      AppHttp.require,
      (session) =>
        Effect.map(Effect.flatMap(AppSession, (sessions) => sessions.clearOthers(session)), (n) => text(String(n)))
    )
  ),
  HttpRouter.get("/logout-all", Effect.map(Effect.flatMap(AppHttp.require, AppHttp.clearAll), (n) => text(String(n)))),
  HttpRouter.get("/logout", Effect.as(Effect.flatMap(AppHttp.require, AppHttp.clear), text("out"))),
  HttpRouter.get("/csrf", Effect.map(AppHttp.require, (session) => text(session.data.csrf))),
  HttpRouter.post("/transfer", Effect.as(Csrf.requireToken(AppHttp.require, (data) => data.csrf), text("sent"))),
  // a defect after the session was read: the server logs its cause
  HttpRouter.get("/boom", Effect.zipRight(AppHttp.require, Effect.dieMessage("boom")))
)

// -----------------------------------------------------------------------------
// the server
// -----------------------------------------------------------------------------

// "either, …": Transport.layerCookieOrBearer, the client using the cookie or `Authorization: Bearer`
type Variant = "cookie" | "bearer" | "named header" | "either, cookie" | "either, bearer"

const inCookie = (variant: Variant) => variant === "cookie" || variant === "either, cookie"

const sessions = Session.layer(AppSession, options).pipe(
  Layer.provide(Layer.orDie(Auth.layer({ keys: [key2, key1] }))),
  Layer.orDie,
  Layer.provideMerge(SessionsTest.layer(Scratch))
)

const transportOf = (variant: Variant): Layer.Layer<never> | Layer.Layer<Transport.Transport> =>
  variant === "cookie"
    ? Layer.empty // the test layer's cookie transport
    : variant === "either, cookie" || variant === "either, bearer"
    ? Layer.orDie(Transport.layerCookieOrBearer({ secure: false }))
    : Layer.orDie(Transport.layerHeader(variant === "bearer" ? {} : { header: "x-session" }))

const server = (variant: Variant) =>
  HttpServer.serve(
    router,
    (app) => HttpMiddleware.logger(AppHttp.middleware(Csrf.middleware()(app)))
  ).pipe(
    Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { port: 0, host: "127.0.0.1" })),
    Layer.provide(transportOf(variant) as Layer.Layer<never>),
    Layer.provideMerge(sessions)
  )

const baseUrl = HttpServer.addressWith((address) =>
  Effect.succeed(address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "")
)

// -----------------------------------------------------------------------------
// the client
// -----------------------------------------------------------------------------

/**
 * A client holding one token, sending it the variant's way and taking the ones the server hands out. A
 * request made with another token (`as`) records what it is handed but leaves the held one alone.
 */
const client = (variant: Variant, url: string, handedOut: Set<string>, errorBodies: Array<string>) => {
  let token: string | undefined
  const send = (method: string, path: string, headers: Record<string, string> = {}, as: string | undefined = token) =>
    Effect.promise(async () => {
      const sent: Record<string, string> = { "sec-fetch-site": "same-origin", ...headers }
      // an API client asks for its token in the header at login (Transport.transportRequestHeader)
      if (variant === "either, bearer") sent[Transport.transportRequestHeader] = "header"
      if (as !== undefined) {
        if (inCookie(variant)) sent["cookie"] = `theme=dark; session=${as}`
        else if (variant === "bearer" || variant === "either, bearer") sent["authorization"] = `Bearer ${as}`
        else sent["x-session"] = as
      }
      const response = await fetch(url + path, { method, headers: sent })
      const own = as === token
      const body = await response.text()
      if (response.status >= 400) errorBodies.push(body)
      if (inCookie(variant)) {
        for (const line of response.headers.getSetCookie()) {
          if (!line.startsWith("session=")) continue
          const value = line.slice("session=".length, line.indexOf(";"))
          if (value !== "") handedOut.add(value)
          if (own) token = value === "" ? undefined : value
        }
      } else {
        const value = response.headers.get("x-session-token")
        if (value !== null) {
          handedOut.add(value)
          if (own) token = value
        }
      }
      return { status: response.status, body }
    })
  return { send, token: () => token, use: (value: string | undefined) => (token = value) }
}

const forge = (token: string) => token.slice(0, -2) + (token.endsWith("AA") ? "BB" : "AA")

/** Every 16-character window of `token`: whoever sees one learns part of the token (its id, its signature). */
const windows = (token: string) => Array.from({ length: token.length - 15 }, (_, i) => token.slice(i, i + 16))

// -----------------------------------------------------------------------------
// the test
// -----------------------------------------------------------------------------

const run = (variant: Variant) => {
  const exporter = new InMemorySpanExporter()
  const tracing = NodeSdk.layer(() => ({
    resource: { serviceName: "effect-sessions-tracing-test" },
    spanProcessor: new SimpleSpanProcessor(exporter)
  }))
  const lines: Array<string> = []
  const logging = Logger.replace(
    Logger.defaultLogger,
    Logger.make((options) => {
      lines.push(Logger.logfmtLogger.log(options))
    })
  )
  return Effect.gen(function*() {
    const url = yield* baseUrl
    const handedOut = new Set<string>()
    const errorBodies: Array<string> = []
    const alice = client(variant, url, handedOut, errorBodies)
    const expectStatus = (status: number) => (reply: { readonly status: number }) => expect(reply.status).toBe(status)

    // issue, read by the middleware, and a login over the session (which retires it)
    expectStatus(200)(yield* alice.send("GET", "/login/alice"))
    const first = alice.token()!
    expectStatus(200)(yield* alice.send("GET", "/me"))
    expectStatus(200)(yield* alice.send("GET", "/login/alice"))
    // (401 since the login retired it: test/layers/Http.test.ts; not asserted here)
    yield* alice.send("GET", "/me", {}, first)
    // extend, update, rotate
    expectStatus(200)(yield* alice.send("GET", "/extend"))
    expectStatus(200)(yield* alice.send("GET", "/increment"))
    expectStatus(200)(yield* alice.send("GET", "/rotate"))
    // automatic renewal (and rolling expiry) on the next request once the id is 15 minutes old
    const beforeRenewal = alice.token()!
    yield* TestClock.adjust("16 minutes")
    expectStatus(200)(yield* alice.send("GET", "/me"))
    expect(alice.token()).not.toBe(beforeRenewal)
    // re-signing: a token signed by the older key K1, for a session in the same store
    const store = yield* Store
    const old = yield* Effect.flatMap(AppSession, (sessions) => sessions.issue("alice", { csrf: Csrf.token(), n: 0 }))
      .pipe(
        Effect.provide(
          Session.layer(AppSession, options).pipe(
            Layer.provide(Layer.succeed(Store, store)),
            Layer.provide(Layer.orDie(Auth.layer({ keys: [key1] }))),
            Layer.orDie
          )
        )
      )
    handedOut.add(old.token)
    const phone = client(variant, url, handedOut, errorBodies)
    phone.use(old.token)
    expectStatus(200)(yield* phone.send("GET", "/me"))
    expect(phone.token()).not.toBe(old.token)
    // list and revoke
    const listed = JSON.parse((yield* alice.send("GET", "/sessions")).body) as ReadonlyArray<{ session: string }>
    expect(listed.length).toBeGreaterThanOrEqual(2)
    const laptop = client(variant, url, handedOut, errorBodies)
    expectStatus(200)(yield* laptop.send("GET", "/login/alice"))
    const withLaptop = JSON.parse((yield* alice.send("GET", "/sessions")).body) as ReadonlyArray<{ session: string }>
    const laptopKey = withLaptop.find((info) => !listed.some((other) => other.session === info.session))!.session
    expectStatus(200)(yield* alice.send("GET", `/revoke/${laptopKey}`))
    expectStatus(401)(yield* laptop.send("GET", "/me"))
    // refused tokens: forged, garbage, a planted duplicate
    expectStatus(401)(yield* alice.send("GET", "/me", {}, forge(alice.token()!)))
    expectStatus(401)(yield* alice.send("GET", "/me", {}, `${alice.token()!.slice(0, 30)}`))
    // CSRF: the synchronizer token, and the origin check
    const csrf = (yield* alice.send("GET", "/csrf")).body
    expectStatus(200)(yield* alice.send("POST", "/transfer", { "x-csrf-token": csrf }))
    expectStatus(403)(yield* alice.send("POST", "/transfer", { "x-csrf-token": forge(csrf) }))
    expectStatus(403)(yield* alice.send("POST", "/transfer", { "sec-fetch-site": "cross-site", "x-csrf-token": csrf }))
    // a defect in a handler, and a store outage
    expectStatus(500)(yield* alice.send("GET", "/boom"))
    const outage = yield* SessionsTest.Outage
    yield* outage.start
    const during = yield* alice.send("GET", "/me").pipe(Effect.ensuring(outage.end))
    expectStatus(503)(during)
    // clearOthers, clearAll, clear
    expectStatus(200)(yield* alice.send("GET", "/others"))
    expectStatus(401)(yield* phone.send("GET", "/me"))
    expectStatus(200)(yield* alice.send("GET", "/logout-all"))
    expectStatus(200)(yield* alice.send("GET", "/login/alice"))
    expectStatus(200)(yield* alice.send("GET", "/logout"))
    expectStatus(401)(yield* alice.send("GET", "/me", {}, [...handedOut].at(-1)))

    // everything the traces and the logs hold
    yield* Effect.sleep(0)
    const spans = exporter.getFinishedSpans()
    const corpus = [
      JSON.stringify(spans.map((span) => ({
        name: span.name,
        attributes: span.attributes,
        events: span.events.map((event) => ({ name: event.name, attributes: event.attributes })),
        status: span.status,
        links: span.links
      }))),
      ...lines,
      ...errorBodies
    ].join("\n")
    const leaks = [...handedOut].flatMap((token) => windows(token).filter((window) => corpus.includes(window)))
    expect(leaks).toEqual([])

    // the test can see what it looks for: request spans with the transport's headers, redacted
    const requestSpans = spans.filter((span) => span.name.startsWith("http.server"))
    expect(requestSpans.length).toBeGreaterThan(20)
    const header = inCookie(variant)
      ? "cookie"
      : variant === "bearer" || variant === "either, bearer"
      ? "authorization"
      : "x-session"
    const recorded = requestSpans.map((span) => span.attributes[`http.request.header.${header}`]).filter((v) =>
      v !== undefined
    )
    expect(recorded.length).toBeGreaterThan(20)
    for (const value of recorded) expect(value).toBe("<redacted>")
    if (!inCookie(variant)) {
      const written = requestSpans.map((span) => span.attributes["http.response.header.x-session-token"]).filter((
        v
      ) => v !== undefined)
      expect(written.length).toBeGreaterThan(5)
      for (const value of written) expect(value).toBe("<redacted>")
    }
    expect(lines.some((line) => line.includes("session store unavailable"))).toBe(true)
    expect(handedOut.size).toBeGreaterThanOrEqual(8)
  }).pipe(Effect.provide(server(variant)), Effect.provide(tracing), Effect.provide(logging))
}

describe("no token in traces, logs or error texts, over HTTP with a real OpenTelemetry exporter", () => {
  it.effect("the cookie transport", () => run("cookie"))
  it.effect("the header transport, Authorization: Bearer", () => run("bearer"))
  it.effect("the header transport on a named header", () => run("named header"))
  it.effect("the cookie-or-bearer transport, used with the cookie", () => run("either, cookie"))
  it.effect("the cookie-or-bearer transport, used with Authorization: Bearer", () => run("either, bearer"))
})

// A transport provided without `Transport.layer` (here `Layer.effect`) leaves its headers out of
// `Headers.currentRedactedNames`: the middleware still overwrites the request header's attribute on the
// request span, and says what is wrong.
describe("a transport provided some other way", () => {
  it.effect("the request header is overwritten on the request span, and a warning says how to fix it", () => {
    const exporter = new InMemorySpanExporter()
    const tracing = NodeSdk.layer(() => ({
      resource: { serviceName: "effect-sessions-tracing-test" },
      spanProcessor: new SimpleSpanProcessor(exporter)
    }))
    const lines: Array<string> = []
    const logging = Logger.replace(
      Logger.defaultLogger,
      Logger.make((options) => lines.push(Logger.logfmtLogger.log(options)))
    )
    return Effect.gen(function*() {
      const url = yield* baseUrl
      const login = yield* Effect.promise(() => fetch(`${url}/login/alice`))
      const token = login.headers.get("x-session-token")!
      const me = yield* Effect.promise(() => fetch(`${url}/me`, { headers: { "x-custom": token } }))
      expect(me.status).toBe(200)
      const attributes = exporter.getFinishedSpans().map((span) => span.attributes["http.request.header.x-custom"])
        .filter((value) => value !== undefined)
      expect(attributes).toEqual(["<redacted>"])
      expect(lines.some((line) => line.includes("are not redacted in traces") && line.includes("x-custom"))).toBe(true)
    }).pipe(
      Effect.provide(
        HttpServer.serve(router, AppHttp.middleware).pipe(
          Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { port: 0, host: "127.0.0.1" })),
          Layer.provide(Layer.effect(Transport.Transport, Effect.orDie(Transport.makeHeader({ header: "x-custom" })))),
          Layer.provideMerge(sessions)
        )
      ),
      Effect.provide(tracing),
      Effect.provide(logging)
    )
  })
})
