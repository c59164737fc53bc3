/**
 * examples/api.ts in headless Chromium: the page driven as a user drives it (the login form, the account
 * page, a reload, logout, "log out everywhere" from another browser), with the session cookie checked as the
 * browser stores it and the protected API called by the page itself.
 *
 * One server and one browser for the file (one `layer(...)` block), on the live clock. Every test opens its
 * own browser contexts (separate cookie jars, as separate browsers) and logs in its own users. The pages may
 * only reach the app on 127.0.0.1 (test/support/browser.ts).
 *
 * Needs Chromium at /usr/bin/chromium (`apt-get install chromium`); without it these tests fail.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it, layer } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { BrowserContext, Page } from "playwright-core"
import * as Example from "../../examples/api.js"
import * as Auth from "../../src/Auth.js"
import * as Browser from "../support/browser.js"

// -----------------------------------------------------------------------------
// the example on a free port, configured without touching process.env
// -----------------------------------------------------------------------------

const ttlSeconds = 60 * 60
// Plain http: the cookie goes without `Secure`, and the test checks that the browser stored it so.
const cookieSecure = false

const TestServer = Example.layer({ port: 0, host: "127.0.0.1" }).pipe(
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
    new Map([
      ["SESSION_KEYS", Auth.randomId(48)],
      ["SESSION_TTL", `${ttlSeconds} seconds`],
      ["COOKIE_SECURE", String(cookieSecure)]
    ])
  )))
)

const origin = HttpServer.addressWith((address) =>
  address._tag === "TcpAddress"
    ? Effect.succeed(`http://${address.hostname}:${address.port}`)
    : Effect.dieMessage("expected a TCP address")
)

// -----------------------------------------------------------------------------
// what the user sees, and what the page's own requests get
// -----------------------------------------------------------------------------

const uniqueName = (name: string) => `${name}-${Crypto.randomBytes(4).toString("hex")}`

/** The account page: `#me` names the user, the login form is hidden. */
const expectLoggedIn = async (page: Page, name: string) => {
  await page.locator("#account").waitFor({ state: "visible" })
  expect(await page.locator("#login-form").isHidden()).toBe(true)
  expect(await page.textContent("#me")).toContain(`Logged in as ${name} (${name.toLowerCase()}) since `)
  // the session list is loaded after `me`: wait for it, so that nothing is left in flight
  await page.locator("#sessions li.current").waitFor()
}

/** The login form, and nothing of the account page. */
const expectLoggedOut = async (page: Page) => {
  await page.locator("#login-form").waitFor({ state: "visible" })
  expect(await page.locator("#account").isHidden()).toBe(true)
  expect(await page.textContent("#me")).toBe("")
  expect(await page.locator("#sessions li").count()).toBe(0)
}

const logIn = async (page: Page, name: string) => {
  await page.goto("/")
  await expectLoggedOut(page)
  await page.fill("#user", name)
  await page.click("#login")
  await expectLoggedIn(page, name)
  expect(await page.textContent("#status")).toBe(`Logged in as ${name}.`)
}

/** The status of `GET /api/me` fetched by the page, with the cookies the browser holds for it. */
const meStatus = (page: Page) => page.evaluate(() => fetch("/api/me").then((response) => response.status))

/** The `session` cookies the browser holds. */
const sessionCookies = async (context: BrowserContext) =>
  (await context.cookies()).filter((cookie) => cookie.name === "session")

// -----------------------------------------------------------------------------
// the tests
// -----------------------------------------------------------------------------

// The browser is acquired after the server, so it is closed first.
layer(Browser.layer.pipe(Layer.provideMerge(TestServer)), { excludeTestServices: true })(
  "examples/api in headless Chromium",
  (it) => {
    it.scoped("log in, reload, log out: the page, the cookie as the browser stores it, the API's answers", () =>
      Effect.gen(function*() {
        const { context, page, problems } = yield* Browser.openTab(yield* origin)
        const name = uniqueName("Alice")
        yield* Effect.promise(async () => {
          await page.goto("/")
          await expectLoggedOut(page)
          expect(await meStatus(page)).toBe(401)

          const before = Date.now() / 1000
          await page.fill("#user", name)
          await page.click("#login")
          await expectLoggedIn(page, name)
          const after = Date.now() / 1000
          expect(await page.textContent("#status")).toBe(`Logged in as ${name}.`)
          expect(await page.locator("#sessions li").count()).toBe(1)
          expect(await meStatus(page)).toBe(200)

          const [cookie, ...others] = await sessionCookies(context)
          expect(others).toEqual([])
          expect(cookie).toMatchObject({
            domain: "127.0.0.1",
            path: "/",
            httpOnly: true,
            secure: cookieSecure,
            sameSite: "Lax"
          })
          // persistent, for the session's lifetime (whole seconds on the wire)
          expect(cookie!.expires).toBeGreaterThanOrEqual(before + ttlSeconds - 1)
          expect(cookie!.expires).toBeLessThanOrEqual(after + ttlSeconds + 1)
          const me = await page.evaluate(() =>
            fetch("/api/me").then((response) => response.json() as Promise<{ expiresAt: string }>)
          )
          expect(Math.abs(cookie!.expires - Date.parse(me.expiresAt) / 1000)).toBeLessThanOrEqual(1)
          // HttpOnly: the page's own scripts cannot read it
          expect(await page.evaluate("document.cookie")).not.toContain("session=")

          // a reload keeps the session: same cookie, same account page
          await page.reload()
          await expectLoggedIn(page, name)
          expect((await sessionCookies(context)).map(({ value }) => value)).toEqual([cookie!.value])

          await page.click("#logout")
          await expectLoggedOut(page)
          expect(await page.textContent("#status")).toBe("Logged out.")
          expect(await sessionCookies(context)).toEqual([])
          expect(await meStatus(page)).toBe(401)
          await page.reload()
          await expectLoggedOut(page)

          // the cookie from before the logout, put back, is refused too (and expired again): the session
          // ended on the server, not only in this browser
          await context.addCookies([cookie!])
          expect(await meStatus(page)).toBe(401)
          expect(await sessionCookies(context)).toEqual([])
          await page.reload()
          await expectLoggedOut(page)
        })
        expect(problems).toEqual([])
      }))

    it.scoped("log out everywhere: the user's other browser is logged out on its next reload, others are not", () =>
      Effect.gen(function*() {
        const url = yield* origin
        const [laptop, phone, other] = yield* Effect.all([
          Browser.openTab(url),
          Browser.openTab(url),
          Browser.openTab(url)
        ])
        const bob = uniqueName("Bob")
        const carol = uniqueName("Carol")
        yield* Effect.promise(async () => {
          await logIn(laptop.page, bob)
          await logIn(phone.page, bob)
          await logIn(other.page, carol)
          // the phone lists both of Bob's sessions
          expect(await phone.page.locator("#sessions li").count()).toBe(2)

          await laptop.page.click("#logout-everywhere")
          await expectLoggedOut(laptop.page)
          expect(await laptop.page.textContent("#status")).toBe("Logged out everywhere (2 sessions).")
          expect(await sessionCookies(laptop.context)).toEqual([])

          // the phone still shows the page it loaded and holds its cookie, but the session behind it is gone
          expect(await phone.page.locator("#account").isVisible()).toBe(true)
          expect(await sessionCookies(phone.context)).toHaveLength(1)
          expect(await meStatus(phone.page)).toBe(401)
          await phone.page.reload()
          await expectLoggedOut(phone.page)
          expect(await sessionCookies(phone.context)).toEqual([])

          // another user's session is untouched
          await other.page.reload()
          await expectLoggedIn(other.page, carol)
          expect(await meStatus(other.page)).toBe(200)
        })
        for (const tab of [laptop, phone, other]) expect(tab.problems).toEqual([])
      }))
  }
)

describe("test/support/browser", () => {
  it.scoped("a missing Chromium fails (never skips) with how to install it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Browser.launch("/nonexistent/chromium"))
      expect(error.reason).toBe("MissingBinary")
      expect(error.message).toContain("/nonexistent/chromium")
      expect(error.message).toContain("apt-get install chromium")
      expect(error.message).toContain("CHROMIUM_PATH")
    }))

  it.effect("CHROMIUM_PATH wins when it names an executable, and fails, naming it, when it does not", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "chromium-path-"))
      const executable = Path.join(dir, "chrome")
      Fs.writeFileSync(executable, "#!/bin/sh\n", { mode: 0o755 })
      expect(yield* Browser.findChromium({ CHROMIUM_PATH: executable })).toBe(executable)
      const missing = yield* Effect.flip(Browser.findChromium({ CHROMIUM_PATH: Path.join(dir, "nope") }))
      expect(missing.reason).toBe("MissingBinary")
      expect(missing.message).toContain(`CHROMIUM_PATH is ${Path.join(dir, "nope")}`)
      // a file that is not executable is no browser
      Fs.chmodSync(executable, 0o644)
      expect((yield* Effect.flip(Browser.findChromium({ CHROMIUM_PATH: executable }))).reason).toBe("MissingBinary")
      Fs.rmSync(dir, { recursive: true })
    }))

  it.effect("looks in the usual places, Playwright's cache included, and says what to install when none has it", () =>
    Effect.gen(function*() {
      const home = Fs.mkdtempSync(Path.join(Os.tmpdir(), "chromium-home-"))
      const cached = Path.join(home, ".cache", "ms-playwright", "chromium-1200", "chrome-linux", "chrome")
      Fs.mkdirSync(Path.dirname(cached), { recursive: true })
      Fs.writeFileSync(cached, "#!/bin/sh\n", { mode: 0o755 })
      const looked = Browser.candidates({ HOME: home })
      for (
        const usual of [
          "/usr/bin/chromium",
          "/usr/bin/chromium-browser",
          "/snap/bin/chromium",
          "/Applications/Chromium.app/Contents/MacOS/Chromium",
          "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
          cached
        ]
      ) expect(looked).toContain(usual)
      expect(yield* Browser.findChromium({ HOME: home }, ["/nonexistent/chromium", cached])).toBe(cached)

      const none = yield* Effect.flip(Browser.findChromium({ HOME: home }, ["/nonexistent/a", "/nonexistent/b"]))
      expect(none.reason).toBe("MissingBinary")
      for (const hint of ["apt-get install chromium", "CHROMIUM_PATH", "/nonexistent/a, /nonexistent/b"]) {
        expect(none.message).toContain(hint)
      }
      Fs.rmSync(home, { recursive: true })
    }))
})
