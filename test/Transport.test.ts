import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import { ConfigError, ConfigProvider, Context, Duration, Effect, FiberRef, Layer, Option, Schema } from "effect"
import * as SessionsConfig from "../src/layers/Config.js"
import * as SessionsTest from "../src/layers/Test.js"
import * as Session from "../src/Session.js"
import * as Transport from "../src/Transport.js"

class Redacting extends Session.Tag<Redacting>()("test/Transport/Redacting", { data: Schema.Struct({}) }) {}
class AdminTransport extends Context.Tag("test/AdminTransport")<AdminTransport, Transport.TransportService>() {}
class OtherTransport extends Context.Tag("test/OtherTransport")<OtherTransport, Transport.TransportService>() {}

const request = (headers: Record<string, string> = {}) =>
  HttpServerRequest.fromWeb(new Request("http://localhost/", { headers }))

const setCookies = (response: HttpServerResponse.HttpServerResponse) => Cookies.toSetCookieHeaders(response.cookies)

// The single Set-Cookie header of a response, split into its `name=value` pair and its attributes.
const setCookie = (response: HttpServerResponse.HttpServerResponse) => {
  const headers = setCookies(response)
  expect(headers).toHaveLength(1)
  const [pair, ...attributes] = headers[0]!.split("; ")
  return { pair: pair!, attributes }
}

const token = "c2Vzc2lvbi1pZA.c2lnbmF0dXJl-_"
const now = Date.UTC(2030, 0, 1, 8, 30, 0)
const expiresAt = now + Duration.toMillis("3 days")

const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

const withEnvLayer = (entries: ReadonlyArray<readonly [string, string]>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(entries)))

describe("Transport", () => {
  describe("cookie", () => {
    describe("read", () => {
      it.effect("reads the session cookie", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          expect(transport.read(request({ cookie: `other=1; __Host-session=${token}; last=2` }))).toEqual([token])
        }))

      it.effect("no cookie, another cookie or an empty cookie is no token", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          expect(transport.read(request())).toEqual([])
          expect(transport.read(request({ cookie: "other=1" }))).toEqual([])
          expect(transport.read(request({ cookie: "__Host-session=" }))).toEqual([])
          expect(transport.read(request({ cookie: "__Host-session=; other=1" }))).toEqual([])
          expect(transport.read(request({ cookie: "__Host-session=\"\"; other=1" }))).toEqual([])
        }))

      it.effect("reads only the configured name", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie({ name: "__Host-sid" })
          expect(transport.read(request({ cookie: `session=${token}` }))).toEqual([])
          expect(transport.read(request({ cookie: `session=x; __Host-sid=${token}` }))).toEqual([token])
        }))

      it.effect("ignores an Authorization header", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          expect(transport.read(request({ authorization: `Bearer ${token}` }))).toEqual([])
        }))

      // A cookie planted from a sibling subdomain (or on a longer path, which browsers send first) sits
      // beside the real one under the same name: every one is a candidate, in header order.
      it.effect("every cookie of the name is a candidate, in header order", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie({ name: "sid" })
          expect(transport.read(request({ cookie: `sid=forged; theme=dark; sid=${token}` }))).toEqual(["forged", token])
          expect(transport.read(request({ cookie: `sid=${token};sid=forged` }))).toEqual([token, "forged"])
          // the platform's own reading keeps only the first
          expect(request({ cookie: `sid=forged; sid=${token}` }).cookies["sid"]).toBe("forged")
        }))

      it.effect(`at most ${Transport.maxCandidates} candidates, empty values skipped`, () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie({ name: "sid" })
          const many = Array.from({ length: 10 }, (_, i) => `sid=t${i}`).join("; ")
          expect(transport.read(request({ cookie: many }))).toEqual(["t0", "t1", "t2", "t3"])
          expect(transport.read(request({ cookie: "sid=; sid= ; sid=\"\"; sid=a" }))).toEqual(["a"])
        }))

      it.effect("values are trimmed, unquoted and percent-decoded only when they decode", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie({ name: "sid" })
          expect(transport.read(request({ cookie: `sid= ${token} ` }))).toEqual([token])
          expect(transport.read(request({ cookie: `sid="${token}"` }))).toEqual([token])
          expect(transport.read(request({ cookie: "sid=a%2Eb" }))).toEqual(["a.b"])
          expect(transport.read(request({ cookie: "sid=a%zzb" }))).toEqual(["a%zzb"])
          expect(transport.read(request({ cookie: "sid=a=b" }))).toEqual(["a=b"])
        }))

      it.effect("only the exact name: not a longer name, another case, or a pair without =", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie({ name: "sid" })
          const cookie = "xsid=1; sidx=2; SID=3; sid; a=sid=4; sid =5"
          expect(transport.read(request({ cookie }))).toEqual(["5"])
        }))

      it.effect("names the headers it reads and writes", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          expect(transport.requestHeader).toBe("cookie")
          expect(transport.responseHeader).toBe("set-cookie")
        }))
    })

    describe("default name", () => {
      const nameOf = (options: Transport.CookieOptions) =>
        Effect.map(
          Transport.makeCookie(options),
          (transport) => setCookie(transport.write(HttpServerResponse.empty(), token, expiresAt, now)).pair
        )

      it.effect("__Host-session when Secure on / with no Domain (the defaults); session otherwise", () =>
        Effect.gen(function*() {
          expect(yield* nameOf({})).toBe(`__Host-session=${token}`)
          expect(yield* nameOf({ secure: true, path: "/" })).toBe(`__Host-session=${token}`)
          // plain-http development keeps the plain name
          expect(yield* nameOf({ secure: false })).toBe(`session=${token}`)
          expect(yield* nameOf({ path: "/app" })).toBe(`session=${token}`)
          expect(yield* nameOf({ domain: "example.com" })).toBe(`session=${token}`)
          // a name given is kept
          expect(yield* nameOf({ name: "sid" })).toBe(`sid=${token}`)
        }))

      it("Transport.cookieName tells the name for given options", () => {
        expect(Transport.cookieName()).toBe(Transport.defaultHostCookieName)
        expect(Transport.cookieName({ secure: false })).toBe(Transport.defaultCookieName)
        expect(Transport.cookieName({ domain: "example.com" })).toBe("session")
        expect(Transport.cookieName({ name: "sid", secure: false })).toBe("sid")
      })

      it.effect("the default transport reads its __Host- cookie and not a plain session cookie", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          expect(transport.read(request({ cookie: `session=forged; __Host-session=${token}` }))).toEqual([token])
          expect(transport.read(request({ cookie: `session=${token}` }))).toEqual([])
        }))
    })

    describe("write", () => {
      it.effect("sets an HttpOnly, Secure, SameSite=Lax cookie on / that expires with the session", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          const response = transport.write(HttpServerResponse.empty(), token, expiresAt, now)
          const { attributes, pair } = setCookie(response)
          expect(pair).toBe(`__Host-session=${token}`)
          expect(attributes).toEqual(
            expect.arrayContaining([
              "HttpOnly",
              "Secure",
              "SameSite=Lax",
              "Path=/",
              `Expires=${new Date(expiresAt).toUTCString()}`,
              `Max-Age=${Duration.toSeconds("3 days")}`
            ])
          )
          expect(attributes).toHaveLength(6)
          expect(attributes.some((a) => a.startsWith("Domain="))).toBe(false)
        }))

      it.effect("adds Vary: Cookie and Cache-Control: no-store", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          const response = transport.write(HttpServerResponse.empty(), token, expiresAt, now)
          expect(response.headers["vary"]).toBe("Cookie")
          expect(response.headers["cache-control"]).toBe("no-store")
        }))

      it.effect("adds Cookie to an existing Vary and does not repeat it", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          const write = (vary: string) =>
            transport.write(HttpServerResponse.empty({ headers: { vary } }), token, expiresAt, now).headers["vary"]
          expect(write("Accept-Encoding")).toBe("Accept-Encoding, Cookie")
          expect(write("Cookie")).toBe("Cookie")
          expect(write("Accept, cookie")).toBe("Accept, cookie")
        }))

      it.effect("Max-Age is the remaining lifetime rounded to the second, so it agrees with Expires", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          const maxAge = (at: number, current: number) =>
            setCookie(transport.write(HttpServerResponse.empty(), token, at, current)).attributes.filter((a) =>
              a.startsWith("Max-Age=")
            )
          // The response leaves a few milliseconds after the expiry was computed.
          expect(maxAge(expiresAt, now + 3)).toEqual([`Max-Age=${Duration.toSeconds("3 days")}`])
          expect(maxAge(now + 90_400, now)).toEqual(["Max-Age=90"])
          expect(maxAge(now + 90_600, now)).toEqual(["Max-Age=91"])
        }))

      it.effect("an expiry already passed gives Max-Age=0, never a negative one", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          const { attributes } = setCookie(transport.write(HttpServerResponse.empty(), token, now - 5_000, now))
          expect(attributes).toContain("Max-Age=0")
        }))

      it.effect("keeps the response's status, headers and other cookies", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          const original = HttpServerResponse.empty({ status: 204, headers: { "x-app": "1" } }).pipe(
            HttpServerResponse.unsafeSetCookie("theme", "dark")
          )
          const response = transport.write(original, token, expiresAt, now)
          expect(response.status).toBe(204)
          expect(response.headers["x-app"]).toBe("1")
          expect(Option.map(Cookies.get(response.cookies, "theme"), (c) => c.value)).toEqual(Option.some("dark"))
          expect(Option.map(Cookies.get(response.cookies, "__Host-session"), (c) => c.value)).toEqual(
            Option.some(token)
          )
        }))

      it.effect("persistent: false makes a browser-session cookie without Expires or Max-Age", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie({ persistent: false })
          const response = transport.write(HttpServerResponse.empty(), token, expiresAt, now)
          const { attributes, pair } = setCookie(response)
          expect(pair).toBe(`__Host-session=${token}`)
          expect(attributes.some((a) => a.startsWith("Expires="))).toBe(false)
          expect(attributes.some((a) => a.startsWith("Max-Age="))).toBe(false)
          expect(attributes).toEqual(expect.arrayContaining(["HttpOnly", "Secure", "SameSite=Lax", "Path=/"]))
          expect(response.headers["vary"]).toBe("Cookie")
          expect(response.headers["cache-control"]).toBe("no-store")
        }))

      it.effect("every configurable attribute appears on the wire", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie({
            name: "__Secure-sid",
            domain: "example.com",
            path: "/app",
            sameSite: "none",
            partitioned: true,
            priority: "high"
          })
          const { attributes, pair } = setCookie(transport.write(HttpServerResponse.empty(), token, expiresAt, now))
          expect(pair).toBe(`__Secure-sid=${token}`)
          expect(attributes).toEqual(
            expect.arrayContaining([
              "Domain=example.com",
              "Path=/app",
              "SameSite=None",
              "Partitioned",
              "Priority=High",
              "Secure",
              "HttpOnly"
            ])
          )
        }))

      it.effect("sameSite strict, priority low and medium, httpOnly and secure off", () =>
        Effect.gen(function*() {
          const strict = yield* Transport.makeCookie({ sameSite: "strict", priority: "low" })
          expect(setCookie(strict.write(HttpServerResponse.empty(), token, expiresAt, now)).attributes).toEqual(
            expect.arrayContaining(["SameSite=Strict", "Priority=Low"])
          )
          const medium = yield* Transport.makeCookie({ priority: "medium" })
          expect(setCookie(medium.write(HttpServerResponse.empty(), token, expiresAt, now)).attributes).toContain(
            "Priority=Medium"
          )
          const open = yield* Transport.makeCookie({ httpOnly: false, secure: false })
          const { attributes } = setCookie(open.write(HttpServerResponse.empty(), token, expiresAt, now))
          expect(attributes).not.toContain("HttpOnly")
          expect(attributes).not.toContain("Secure")
          expect(attributes).toContain("SameSite=Lax")
        }))
    })

    describe("clear", () => {
      it.effect("expires the cookie with the same name, path and domain", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie({ name: "sid", domain: "example.com", path: "/app" })
          const written = setCookie(transport.write(HttpServerResponse.empty(), token, expiresAt, now))
          const response = transport.clear(HttpServerResponse.empty())
          const { attributes, pair } = setCookie(response)
          expect(pair).toBe("sid=")
          expect(attributes).toContain("Max-Age=0")
          for (const attribute of ["Domain=example.com", "Path=/app", "Secure", "HttpOnly", "SameSite=Lax"]) {
            expect(written.attributes).toContain(attribute)
            expect(attributes).toContain(attribute)
          }
          expect(response.headers["vary"]).toBe("Cookie")
          expect(response.headers["cache-control"]).toBe("no-store")
        }))

      it.effect("replaces a cookie written earlier on the same response", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeCookie()
          const response = transport.clear(transport.write(HttpServerResponse.empty(), token, expiresAt, now))
          const { attributes, pair } = setCookie(response)
          expect(pair).toBe("__Host-session=")
          expect(attributes).toContain("Max-Age=0")
        }))
    })

    describe("invalid options", () => {
      const invalid: ReadonlyArray<readonly [string, Transport.CookieOptions]> = [
        ["__Host- with a domain", { name: "__Host-sid", domain: "example.com" }],
        ["__Host- without secure", { name: "__Host-sid", secure: false }],
        ["__Host- with a path other than /", { name: "__Host-sid", path: "/app" }],
        ["__Host- in another case with a domain", { name: "__host-sid", domain: "example.com" }],
        ["__Secure- without secure", { name: "__Secure-sid", secure: false }],
        ["SameSite=None without secure", { sameSite: "none", secure: false }],
        ["partitioned without secure", { partitioned: true, secure: false }],
        ["a name with a space", { name: "bad name" }],
        ["a name with a semicolon", { name: "a;b" }],
        ["a name with an equals sign", { name: "a=b" }],
        ["an empty name", { name: "" }],
        ["a path with a semicolon", { path: "/a;b" }],
        ["a path not starting with /", { path: "app" }],
        ["a domain with a semicolon", { domain: "example.com;x" }]
      ]
      for (const [name, options] of invalid) {
        it.effect(`${name} fails with InvalidTransportOptions`, () =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(Transport.makeCookie(options))
            expect(error).toBeInstanceOf(Transport.InvalidTransportOptions)
            expect(error._tag).toBe("InvalidTransportOptions")
            expect(error.message.length).toBeGreaterThan(0)
          }))
      }

      it.effect("the layer fails the same way", () =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(
            Transport.Transport.pipe(Effect.provide(Transport.layerCookie({ name: "__Host-sid", secure: false })))
          )
          expect(error._tag).toBe("InvalidTransportOptions")
        }))

      it.effect("valid prefixed names are accepted", () =>
        Effect.gen(function*() {
          for (const name of ["__Host-sid", "__Secure-sid", "__host-sid"]) {
            const transport = yield* Transport.makeCookie({ name })
            expect(transport.read(request({ cookie: `${name}=${token}` }))).toEqual([token])
          }
          yield* Transport.makeCookie({ name: "__Secure-sid", domain: "example.com", path: "/app" })
          yield* Transport.makeCookie({ sameSite: "none", partitioned: true })
        }))
    })

    describe("layerCookieConfig", () => {
      const written = Effect.map(
        Transport.Transport,
        (transport) => transport.write(HttpServerResponse.empty(), token, expiresAt, now)
      )

      it.effect("reads the COOKIE_* variables", () =>
        Effect.gen(function*() {
          const response = yield* written
          const { attributes, pair } = setCookie(response)
          expect(pair).toBe(`sid=${token}`)
          expect(attributes).toEqual(
            expect.arrayContaining(["Domain=example.com", "Path=/app", "SameSite=Strict", "Partitioned", "Secure"])
          )
          expect(attributes.some((a) => a.startsWith("Expires="))).toBe(false)
          expect(attributes.some((a) => a.startsWith("Max-Age="))).toBe(false)
        }).pipe(
          Effect.provide(Transport.layerCookieConfig()),
          withEnv([
            ["COOKIE_NAME", "sid"],
            ["COOKIE_DOMAIN", "example.com"],
            ["COOKIE_PATH", "/app"],
            ["COOKIE_SAMESITE", "strict"],
            ["COOKIE_PARTITIONED", "true"],
            ["COOKIE_PERSISTENT", "false"]
          ])
        ))

      it.effect("reads COOKIE_HTTPONLY and COOKIE_PRIORITY, and COOKIE_SAMESITE in any case", () =>
        Effect.gen(function*() {
          const { attributes } = setCookie(yield* written)
          expect(attributes).not.toContain("HttpOnly")
          expect(attributes).toEqual(expect.arrayContaining(["Priority=High", "SameSite=Strict"]))
        }).pipe(
          Effect.provide(Transport.layerCookieConfig()),
          withEnv([["COOKIE_HTTPONLY", "false"], ["COOKIE_PRIORITY", "HIGH"], ["COOKIE_SAMESITE", "Strict"]])
        ))

      it.effect("COOKIE_SECURE=false drops Secure", () =>
        Effect.gen(function*() {
          expect(setCookie(yield* written).attributes).not.toContain("Secure")
        }).pipe(Effect.provide(Transport.layerCookieConfig()), withEnv([["COOKIE_SECURE", "false"]])))

      it.effect("uses the defaults without variables", () =>
        Effect.gen(function*() {
          const { attributes, pair } = setCookie(yield* written)
          expect(pair).toBe(`__Host-session=${token}`)
          expect(attributes).toEqual(
            expect.arrayContaining([
              "HttpOnly",
              "Secure",
              "SameSite=Lax",
              "Path=/",
              `Max-Age=${Duration.toSeconds("3 days")}`
            ])
          )
        }).pipe(Effect.provide(Transport.layerCookieConfig()), withEnv([])))

      it.effect("options that break the cookie rules fail with InvalidTransportOptions", () =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(written.pipe(Effect.provide(Transport.layerCookieConfig())))
          expect(error._tag).toBe("InvalidTransportOptions")
        }).pipe(withEnv([["COOKIE_NAME", "__Host-sid"], ["COOKIE_DOMAIN", "example.com"]])))

      it.effect("an invalid value is a ConfigError naming the variable", () =>
        Effect.gen(function*() {
          for (
            const [name, value] of [
              ["COOKIE_SAMESITE", "sometimes"],
              ["COOKIE_SECURE", "maybe"],
              ["COOKIE_PRIORITY", "urgent"]
            ] as const
          ) {
            const error = yield* Effect.flip(
              written.pipe(Effect.provide(Transport.layerCookieConfig()), withEnv([[name, value]]))
            )
            expect(ConfigError.isConfigError(error)).toBe(true)
            expect(String(error)).toContain(name)
          }
        }))
    })
  })

  describe("header", () => {
    describe("read", () => {
      it.effect("reads an Authorization: Bearer token", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeHeader()
          expect(transport.read(request({ authorization: `Bearer ${token}` }))).toEqual([token])
          expect(transport.read(request({ Authorization: `bearer ${token}` }))).toEqual([token])
        }))

      it.effect("another scheme, a bare value or garbage is no token", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeHeader()
          for (
            const value of [
              `Basic ${token}`,
              token,
              "Bearer",
              "Bearer ",
              `Bearer ${token} extra`,
              `Bearertoken`,
              `Token ${token}`,
              "\u00ff\u00fe garbage"
            ]
          ) {
            expect(transport.read(request({ authorization: value }))).toEqual([])
          }
          expect(transport.read(request())).toEqual([])
        }))

      it.effect("ignores the session cookie", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeHeader()
          expect(transport.read(request({ cookie: `session=${token}` }))).toEqual([])
        }))

      it.effect("a named header repeated (joined with commas by Node) gives each value as a candidate", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeHeader({ header: "x-session" })
          expect(transport.read(request({ "x-session": `forged, ${token}` }))).toEqual(["forged", token])
          expect(transport.read(request({ "x-session": "a,b,,c,d,e,f" }))).toEqual(["a", "b", "c", "d"])
          expect(transport.read(request({ "x-session": " , " }))).toEqual([])
        }))

      it.effect("names the headers it reads and writes, lowercase", () =>
        Effect.gen(function*() {
          const bearer = yield* Transport.makeHeader()
          expect([bearer.requestHeader, bearer.responseHeader]).toEqual(["authorization", "x-session-token"])
          const named = yield* Transport.makeHeader({ header: "X-Session", responseHeader: "X-Auth-Token" })
          expect([named.requestHeader, named.responseHeader]).toEqual(["x-session", "x-auth-token"])
        }))

      it.effect("a named header is read raw", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeHeader({ header: "X-Session" })
          expect(transport.read(request({ "x-session": token }))).toEqual([token])
          expect(transport.read(request({ "X-Session": ` ${token} ` }))).toEqual([token])
          expect(transport.read(request({ authorization: `Bearer ${token}` }))).toEqual([])
          expect(transport.read(request())).toEqual([])
        }))
    })

    describe("write and clear", () => {
      it.effect("write puts the token in x-session-token, uncached, without a cookie", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeHeader()
          const response = transport.write(HttpServerResponse.empty(), token, expiresAt, now)
          expect(response.headers["x-session-token"]).toBe(token)
          expect(response.headers["cache-control"]).toBe("no-store")
          expect(response.headers["vary"]).toBe("Authorization")
          expect(setCookies(response)).toEqual([])
          const named = yield* Transport.makeHeader({ header: "x-session" })
          const written = named.write(HttpServerResponse.empty({ headers: { vary: "Accept" } }), token, expiresAt, now)
          expect(written.headers["vary"]).toBe("Accept, X-Session")
        }))

      it.effect("write uses the configured response header", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeHeader({ responseHeader: "X-Auth-Token" })
          const response = transport.write(HttpServerResponse.empty(), token, expiresAt, now)
          expect(response.headers["x-auth-token"]).toBe(token)
          expect(response.headers["x-session-token"]).toBeUndefined()
        }))

      it.effect("clear sets no cookie and no token", () =>
        Effect.gen(function*() {
          const transport = yield* Transport.makeHeader()
          const response = transport.clear(HttpServerResponse.empty())
          expect(setCookies(response)).toEqual([])
          expect(response.headers["x-session-token"]).toBeUndefined()
          expect(response.headers["cache-control"]).toBe("no-store")
        }))
    })

    it.effect("invalid header names fail with InvalidTransportOptions", () =>
      Effect.gen(function*() {
        for (
          const options of [{ header: "bad header" }, { header: "" }, { responseHeader: "x:token" }, {
            responseHeader: "x\ny"
          }]
        ) {
          const error = yield* Effect.flip(Transport.makeHeader(options))
          expect(error._tag).toBe("InvalidTransportOptions")
        }
      }))

    it.effect("layerHeader provides the transport", () =>
      Effect.gen(function*() {
        const transport = yield* Transport.Transport
        expect(transport.read(request({ "x-api-session": token }))).toEqual([token])
      }).pipe(Effect.provide(Transport.layerHeader({ header: "x-api-session" }))))
  })

  // The platform's HTTP tracer records every request and response header not in
  // `Headers.currentRedactedNames`; each transport layer adds its own header names there.
  describe("redaction of the transport's headers in traces", () => {
    const redactedNames = FiberRef.get(Headers.currentRedactedNames)
    const defaults = ["authorization", "cookie", "set-cookie", "x-api-key"]

    const cases: ReadonlyArray<
      readonly [string, Layer.Layer<Transport.Transport, unknown>, ReadonlyArray<string>]
    > = [
      ["layerCookie", Transport.layerCookie(), ["cookie", "set-cookie"]],
      ["layerCookieConfig", Transport.layerCookieConfig().pipe(Layer.provide(withEnvLayer([]))), [
        "cookie",
        "set-cookie"
      ]],
      ["layerHeader", Transport.layerHeader(), ["authorization", "x-session-token"]],
      ["layerHeader with named headers", Transport.layerHeader({ header: "X-Session", responseHeader: "X-Out" }), [
        "x-session",
        "x-out"
      ]],
      [
        "SessionsConfig.layerTransport (header)",
        SessionsConfig.layerTransport.pipe(
          Layer.provide(withEnvLayer([["SESSION_TRANSPORT", "header"], ["SESSION_HEADER", "x-token"]]))
        ),
        ["x-token", "x-session-token"]
      ],
      ["SessionsConfig.layerTransport (cookie)", SessionsConfig.layerTransport.pipe(Layer.provide(withEnvLayer([]))), [
        "cookie",
        "set-cookie"
      ]],
      ["SessionsTest.layer", SessionsTest.layer(Redacting), ["cookie", "set-cookie"]],
      ["Transport.layer (a transport of your own)", Transport.layer(Transport.makeHeader({ header: "x-own" })), [
        "x-own",
        "x-session-token"
      ]]
    ]
    for (const [name, layer, expected] of cases) {
      it.effect(`${name} adds ${expected.join(" and ")}`, () =>
        Effect.gen(function*() {
          const names = yield* redactedNames
          for (const header of expected) expect(names).toContain(header)
          // added once, after the platform's defaults
          expect(names.slice(0, defaults.length)).toEqual(defaults)
          expect(new Set(names).size).toBe(names.length)
        }).pipe(Effect.provide(layer)))
    }

    it.effect("Transport.under provides the same service under another tag, still redacted", () =>
      Effect.gen(function*() {
        const transport = yield* AdminTransport
        expect(transport.read(request({ cookie: `admin=${token}` }))).toEqual([token])
        expect(yield* redactedNames).toContain("x-admin")
      }).pipe(
        Effect.provide(
          Layer.merge(
            Transport.layerCookie({ name: "admin" }).pipe(Transport.under(AdminTransport)),
            Transport.layerHeader({ header: "x-admin" }).pipe(Transport.under(OtherTransport))
          )
        )
      ))

    it.effect("outside the layer, the names are the platform's defaults again", () =>
      Effect.gen(function*() {
        yield* Effect.scoped(Layer.build(Transport.layerHeader({ header: "x-scoped" })))
        expect(yield* redactedNames).not.toContain("x-scoped")
      }))
  })
})
