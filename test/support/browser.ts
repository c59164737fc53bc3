/**
 * Headless Chromium for the browser tests, driven by playwright-core.
 *
 * The tests drive an installed Chromium (or Google Chrome); Playwright never downloads a browser of its own.
 * `CHROMIUM_PATH` names the executable; otherwise {@link findChromium} looks in the usual places
 * ({@link candidates}: Debian/Ubuntu, snap, macOS, Playwright's cache). Without one the tests fail with a
 * message saying what to install or set: they never skip.
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
import * as FsSync from "node:fs"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core"

// ---------------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------------

/** Where the tests look for Chromium when `CHROMIUM_PATH` is unset, in this order (the first executable wins). */
export const candidates = (env: NodeJS.ProcessEnv = process.env): ReadonlyArray<string> => [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/snap/bin/chromium",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
  "/Applications/Chromium.app/Contents/MacOS/Chromium",
  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
  ...playwrightCache(env)
]

// Browsers a Playwright install downloaded (`npx playwright install chromium`), newest revision first.
const playwrightCache = (env: NodeJS.ProcessEnv): ReadonlyArray<string> => {
  const home = env["HOME"] ?? ""
  const roots = [
    env["PLAYWRIGHT_BROWSERS_PATH"],
    Path.join(home, ".cache", "ms-playwright"),
    Path.join(home, "Library", "Caches", "ms-playwright")
  ].filter((root): root is string => root !== undefined && root !== "" && root !== "0")
  const found: Array<string> = []
  for (const root of roots) {
    let entries: Array<string>
    try {
      entries = FsSync.readdirSync(root).filter((entry) => /^chromium-\d+$/.test(entry))
    } catch {
      continue
    }
    entries.sort((a, b) => Number(b.slice("chromium-".length)) - Number(a.slice("chromium-".length)))
    for (const entry of entries) {
      for (
        const executable of [
          ["chrome-linux", "chrome"],
          ["chrome-linux64", "chrome"],
          ["chrome-mac", "Chromium.app", "Contents", "MacOS", "Chromium"],
          ["chrome-mac-arm64", "Chromium.app", "Contents", "MacOS", "Chromium"]
        ]
      ) found.push(Path.join(root, entry, ...executable))
    }
  }
  return found
}

const isExecutable = (path: string): boolean => {
  try {
    FsSync.accessSync(path, FsSync.constants.X_OK)
    return FsSync.statSync(path).isFile()
  } catch {
    return false
  }
}

/**
 * The Chromium the tests launch: `CHROMIUM_PATH` when set (and then only it: a typo must not silently pick
 * another browser), else the first executable of {@link candidates}; or the error saying what to install or
 * set.
 */
export const findChromium = (
  env: NodeJS.ProcessEnv = process.env,
  looked: ReadonlyArray<string> = candidates(env)
): Effect.Effect<string, BrowserHarnessError> =>
  Effect.suspend(() => {
    const override = env["CHROMIUM_PATH"]
    if (override !== undefined && override !== "") {
      return isExecutable(override) ? Effect.succeed(override) : Effect.fail(
        new BrowserHarnessError({
          reason: "MissingBinary",
          message: `CHROMIUM_PATH is ${override}, which is not an executable file. Point it at Chromium or Google ` +
            "Chrome, or unset it to look in the usual places."
        })
      )
    }
    const found = looked.find(isExecutable)
    return found !== undefined ? Effect.succeed(found) : Effect.fail(
      new BrowserHarnessError({
        reason: "MissingBinary",
        message: "Chromium was not found. The browser tests drive an installed headless Chromium through " +
          "playwright-core, which downloads no browser. Install it (Debian/Ubuntu: `apt-get install chromium`; " +
          "Ubuntu without it: `snap install chromium`; macOS: `brew install --cask chromium` or Google Chrome), " +
          "or set CHROMIUM_PATH to its executable, or run `npx playwright install chromium`. Looked in: " +
          looked.join(", ")
      })
    )
  })

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
 * Launches headless Chromium from `executablePath` (default: {@link findChromium}; a fresh temporary profile,
 * removed on close); the scope closes it, and with it every context and page.
 */
export const launch = (
  path?: string
): Effect.Effect<Browser, BrowserHarnessError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const executablePath = path ?? (yield* findChromium())
      yield* Effect.tryPromise({
        try: () => Fs.access(executablePath, Fs.constants.X_OK),
        catch: () =>
          new BrowserHarnessError({
            reason: "MissingBinary",
            message: `Chromium was not found at ${executablePath}. The browser tests drive an installed headless ` +
              "Chromium through playwright-core, which downloads no browser: install it (`apt-get install " +
              "chromium` on Debian/Ubuntu, as .ci/run does) or set CHROMIUM_PATH to its executable."
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
