/**
 * Headless Chromium for the browser tests, driven by playwright-core.
 *
 * The tests use the system's Chromium at `/usr/bin/chromium` (Debian's `chromium` package, which `.ci/run`
 * installs); Playwright never downloads a browser of its own. Without it the tests fail with a message saying
 * how to install it: they never skip.
 *
 * `layer` gives a test file one browser, launched on first use and closed with the layer. Launching lazily
 * is deliberate: a layer that fails to build fails `beforeAll`, and vitest then reports the file's tests as
 * skipped; a launch inside the first test fails that test, and every later one, with the message.
 *
 * `openTab` gives a test a fresh browser context (its own cookie jar) and a page, closed with the test's
 * scope. The page may only reach the app's origin: any other request is aborted and recorded.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Fs from "node:fs/promises"
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core"

// ---------------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------------

/** Where the tests expect Chromium. */
export const chromiumPath = "/usr/bin/chromium"

/** A browser context with one page, for one test. */
export interface Tab {
  readonly context: BrowserContext
  readonly page: Page
  /** What went wrong in the page so far: requests to another origin (aborted) and uncaught errors. */
  readonly problems: ReadonlyArray<string>
}

/** Why the browser could not be used; `message` says what to do about it. */
export class BrowserHarnessError extends Data.TaggedError("BrowserHarnessError")<{
  readonly reason: "MissingBinary" | "LaunchFailed" | "ContextFailed"
  readonly message: string
}> {}

/** The file's browser: `browser` launches it on first use and then always answers the same one (or error). */
export class Chromium extends Context.Tag("test/support/browser/Chromium")<Chromium, {
  readonly browser: Effect.Effect<Browser, BrowserHarnessError>
}>() {}

// ---------------------------------------------------------------------------------------------------------------------
// constructors
// ---------------------------------------------------------------------------------------------------------------------

// The flags keep a headless run quiet and local: no GPU, no sandbox (CI runs as root), no QUIC, and none of
// the background traffic (updates, sync, component downloads) a closed network would only make slow.
const args = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

/** Bounds for every step, well under the 30 s a test may take, so that a failure names the step. */
const launchTimeout = Duration.seconds(20)
const closeTimeout = Duration.seconds(10)
const actionTimeout = Duration.seconds(5)
const navigationTimeout = Duration.seconds(10)

/**
 * Launches headless Chromium from `executablePath` (a fresh temporary profile, removed on close); the scope
 * closes it, and with it every context and page.
 */
export const launch = (
  executablePath: string = chromiumPath
): Effect.Effect<Browser, BrowserHarnessError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      yield* Effect.tryPromise({
        try: () => Fs.access(executablePath, Fs.constants.X_OK),
        catch: () =>
          new BrowserHarnessError({
            reason: "MissingBinary",
            message: `Chromium was not found at ${executablePath}. The browser tests drive the system's headless ` +
              "Chromium through playwright-core, which downloads no browser: install it with " +
              "`apt-get install chromium` (Debian/Ubuntu; .ci/run does this)."
          })
      })
      return yield* Effect.tryPromise({
        try: () => chromium.launch({ executablePath, args, timeout: Duration.toMillis(launchTimeout) }),
        catch: (error) =>
          new BrowserHarnessError({
            reason: "LaunchFailed",
            message: `Chromium at ${executablePath} did not start: ${error instanceof Error ? error.message : error}`
          })
      })
    }),
    (browser) => Effect.promise(() => browser.close()).pipe(Effect.timeout(closeTimeout), Effect.ignore)
  )

/** One browser for everything that uses the layer, launched on first use, closed when the layer is released. */
export const layer: Layer.Layer<Chromium> = Layer.scoped(
  Chromium,
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const browser = yield* Effect.cached(Scope.extend(launch(), scope))
    return Chromium.of({ browser })
  })
)

/**
 * A fresh context and page whose relative URLs resolve against `origin`, the only origin it may reach. The
 * scope closes the context.
 */
export const openTab = (origin: string): Effect.Effect<Tab, BrowserHarnessError, Chromium | Scope.Scope> =>
  Effect.gen(function*() {
    const browser = yield* Effect.flatMap(Chromium, (chromium) => chromium.browser)
    const context = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => browser.newContext({ baseURL: origin }),
        catch: (error) => new BrowserHarnessError({ reason: "ContextFailed", message: String(error) })
      }),
      (context) => Effect.promise(() => context.close()).pipe(Effect.timeout(closeTimeout), Effect.ignore)
    )
    context.setDefaultTimeout(Duration.toMillis(actionTimeout))
    context.setDefaultNavigationTimeout(Duration.toMillis(navigationTimeout))
    const problems: Array<string> = []
    const page = yield* Effect.tryPromise({
      try: async () => {
        await context.route("**/*", (route) => {
          const url = new URL(route.request().url())
          if (url.origin === origin) return route.continue()
          problems.push(`request to ${url.origin} (aborted)`)
          return route.abort("blockedbyclient")
        })
        return context.newPage()
      },
      catch: (error) => new BrowserHarnessError({ reason: "ContextFailed", message: String(error) })
    })
    page.on("pageerror", (error) => problems.push(`uncaught error in the page: ${error.message}`))
    return { context, page, problems }
  })
