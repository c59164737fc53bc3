/**
 * The README's code that claims to be a file of this repository is that file: the "Testing your app"
 * example is test/examples/testing.test.ts (which the suite runs), with the package's import paths.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"

const repo = Path.resolve(import.meta.dirname, "../..")
const readme = Fs.readFileSync(Path.join(repo, "README.md"), "utf8")

/** The first TypeScript block after `heading`. */
const blockAfter = (heading: string): string | undefined => {
  const at = readme.indexOf(`\n${heading}\n`)
  if (at < 0) return undefined
  const start = readme.indexOf("```ts\n", at)
  const end = readme.indexOf("```\n", start + 6)
  return start < 0 || end < 0 ? undefined : readme.slice(start + 6, end)
}

/** A test file as a user's project imports the package. */
const asPackage = (source: string) => source.replace(/"\.\.\/\.\.\/src\/([^"]+)\.js"/g, "\"effect-sessions/$1\"")

describe("README", () => {
  it("its \"Testing your app\" example is test/examples/testing.test.ts", () => {
    const file = Fs.readFileSync(Path.join(repo, "test/examples/testing.test.ts"), "utf8")
    expect(file).toContain("../../src/")
    expect(blockAfter("## Testing your app")).toBe(asPackage(file))
  })
})
