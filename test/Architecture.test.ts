/**
 * The module rules of STYLE.md, checked on the source: `internal/` imports the public modules only as
 * types; no runtime import cycle; the public ports sit in the order data flows through them (request →
 * Transport → Auth → Store → Session), and none imports one that comes later at runtime.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import ts from "typescript"

const root = Path.resolve(import.meta.dirname, "../src")

const sources = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sources(Path.join(dir, entry.name))
      : entry.name.endsWith(".ts")
      ? [Path.join(dir, entry.name)]
      : []
  )

/** The modules of src/ that `file` imports at runtime (type-only imports and specifiers left out). */
const runtimeImports = (file: string): Array<string> => {
  const source = ts.createSourceFile(file, Fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true)
  const imports: Array<string> = []
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) continue
    const specifier = statement.moduleSpecifier
    if (specifier === undefined || !ts.isStringLiteral(specifier) || !specifier.text.startsWith(".")) continue
    if (ts.isImportDeclaration(statement)) {
      // an import without a clause (`import "./x.js"`) runs the module: it counts
      const clause = statement.importClause
      if (clause?.isTypeOnly === true) continue
      const bindings = clause?.namedBindings
      const onlyTypes = clause !== undefined && clause.name === undefined && bindings !== undefined &&
        ts.isNamedImports(bindings) && bindings.elements.every((element) => element.isTypeOnly)
      if (onlyTypes) continue
    } else if (statement.isTypeOnly) continue
    imports.push(Path.resolve(Path.dirname(file), specifier.text.replace(/\.js$/, ".ts")))
  }
  return imports
}

const graph = new Map(sources(root).map((file) => [file, runtimeImports(file)]))
const relative = (file: string) => Path.relative(root, file)

describe("module rules", () => {
  it("finds the modules it checks", () => {
    expect(graph.size).toBeGreaterThan(20)
    expect(graph.get(Path.join(root, "Session.ts"))).toContain(Path.join(root, "internal/read.ts"))
  })

  it("internal/ imports the public modules only as types", () => {
    const offending = [...graph].flatMap(([file, imports]) =>
      relative(file).startsWith("internal/")
        ? imports.filter((target) => !relative(target).startsWith("internal/")).map((target) =>
          `${relative(file)} -> ${relative(target)}`
        )
        : []
    )
    expect(offending).toEqual([])
  })

  it("has no runtime import cycle", () => {
    const cycles: Array<string> = []
    const state = new Map<string, "visiting" | "done">()
    const visit = (file: string, path: Array<string>) => {
      if (state.get(file) === "done") return
      if (state.get(file) === "visiting") {
        cycles.push([...path.slice(path.indexOf(file)), file].map(relative).join(" -> "))
        return
      }
      state.set(file, "visiting")
      for (const target of graph.get(file) ?? []) visit(target, [...path, file])
      state.set(file, "done")
    }
    for (const file of graph.keys()) visit(file, [])
    expect(cycles).toEqual([])
  })

  it("the ports import no module later on the request's path", () => {
    const order = ["Transport.ts", "Auth.ts", "Store.ts", "Session.ts"]
    const offending = order.flatMap((module, index) =>
      (graph.get(Path.join(root, module)) ?? [])
        .filter((target) => order.indexOf(relative(target)) > index)
        .map((target) => `${module} -> ${relative(target)}`)
    )
    expect(offending).toEqual([])
  })
})
