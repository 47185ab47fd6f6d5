// Fails when a file given uses a type cast: `x as T` (also `as const`),
// `<T>x`, a non-null assertion `x!`, the type `any`, or a @ts-ignore,
// @ts-expect-error or @ts-nocheck comment. The wrapper and the drivers must
// type-check on what the generated types say, not on what we assert.
//
//   node scripts/no-casts.mjs src/index.ts e2e/*.ts
import { readFileSync } from "node:fs";
import ts from "typescript";

let found = 0;
for (const path of process.argv.slice(2)) {
  const text = readFileSync(path, "utf8");
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const report = (node, what) => {
    const { line, character } = source.getLineAndCharacterOfPosition(node.getStart(source));
    console.error(`${path}:${line + 1}:${character + 1}: ${what}: ${node.getText(source).slice(0, 80)}`);
    found += 1;
  };
  const visit = (node) => {
    if (ts.isAsExpression(node)) report(node, "a cast (as)");
    else if (ts.isTypeAssertionExpression(node)) report(node, "a cast (<T>)");
    else if (ts.isNonNullExpression(node)) report(node, "a non-null assertion (!)");
    else if (node.kind === ts.SyntaxKind.AnyKeyword) report(node, "the type any");
    ts.forEachChild(node, visit);
  };
  visit(source);
  for (const match of text.matchAll(/@ts-(ignore|expect-error|nocheck)/g)) {
    const { line } = source.getLineAndCharacterOfPosition(match.index);
    console.error(`${path}:${line + 1}: a @ts-${match[1]} comment`);
    found += 1;
  }
}
if (found > 0) {
  console.error(`${found} cast(s): type the code on the generated types instead`);
  process.exit(1);
}
console.log(`no casts in ${process.argv.length - 2} file(s)`);
