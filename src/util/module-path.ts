// Paths of this package's own modules handed to `new Worker()` or a child `node`: tsc rewrites the `.ts`
// of import specifiers for the compiled package (dist/*.js) but not strings given to `new URL()`.

/**
 * The URL of the module `name` (a relative path without extension) beside the module `meta`: `NAME.ts`
 * when `meta` runs from sources (a clone, through tsx), `NAME.js` in the compiled package.
 *
 * @example siblingModule('./main', import.meta.url) // file:///…/src/cli/main.ts or …/dist/cli/main.js
 */
export function siblingModule(name: string, meta: string): URL {
  return new URL(`${name}${meta.endsWith('.ts') ? '.ts' : '.js'}`, meta);
}
