/**
 * Prints one closing line in the plain `N passed, N failed` form after vitest's own summary, so that
 * tools reading only the last line of a run (CI) see the counts.
 */
import type { Reporter, TestModule } from "vitest/node"

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>) {
    let passed = 0
    let failed = errors.length
    let skipped = 0
    for (const module of modules) {
      if (module.state() === "failed" && module.children.size === 0) failed++
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else skipped++
      }
    }
    const line = `vitest: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`
    // vitest prints its own summary after the reporters' hooks; print ours last of all
    process.once("exit", () => process.stdout.write(`${line}\n`))
  }
}
