// Lint rule `tokenwarden/no-import-cycle`: no file of ours may import, through any chain of
// imports, a file that imports it back.
//
// Why our own rule and not `import-x/no-cycle`: that one skips `import type`, and most of our
// cycles were type-only (a store module and its adapter interface, a provider and its catalog).
// A type-only cycle costs nothing at run time, but it is still two modules that have not decided
// which depends on which, and it is the next value import away from a real one.
//
// What counts: every static `import` (type-only included), `export ... from`, `import x =
// require()`, `import()` and `typeof import()`, as TypeScript's own pre-processor lists them.
// Only relative specifiers are followed: our files import each other by relative `.ts` path, and
// an import of another package goes through its name, which the package-boundary rules already
// keep one-way (core never imports server, client imports nothing, ...).
import { readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import ts from 'typescript';

/** Each file's relative imports, as absolute paths, kept while the file's mtime is the same. */
const importCache = new Map();

function importsOnDisk(file) {
  let mtimeMs;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    return []; // not a file we can follow (a directory, a missing `.js` twin): no edge
  }
  const cached = importCache.get(file);
  if (cached?.mtimeMs === mtimeMs) return cached.imports;
  const imports = relativeTargets(file, readFileSync(file, 'utf8'));
  importCache.set(file, { mtimeMs, imports });
  return imports;
}

function relativeTargets(file, text) {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map(({ fileName }) => fileName)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => resolve(dirname(file), specifier));
}

/** The chain of files from `start` back to `file`, or undefined when there is none. */
function chainBack(start, file, cannotReach) {
  // Breadth first, so the chain reported is a shortest one.
  const cameFrom = new Map([[start, undefined]]);
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const current = queue[i];
    for (const next of importsOnDisk(current)) {
      if (next === file) {
        const chain = [current];
        for (let back = cameFrom.get(current); back; back = cameFrom.get(back)) chain.push(back);
        return chain.reverse();
      }
      if (!cameFrom.has(next) && !cannotReach.has(next)) {
        cameFrom.set(next, current);
        queue.push(next);
      }
    }
  }
  for (const seen of cameFrom.keys()) cannotReach.add(seen);
  return undefined;
}

export const noImportCycle = {
  meta: {
    type: 'problem',
    docs: {
      description: 'Forbid import cycles between our own files, type-only imports included.',
    },
    schema: [],
    messages: { cycle: 'Import cycle: {{chain}}. Move what they share into a module of its own.' },
  },
  create(context) {
    const file = context.physicalFilename;
    // Files that were searched completely and do not lead back to this one.
    const cannotReach = new Set();
    return {
      Program() {
        // The linted file's own imports come from its text as the editor has it, not the disk's.
        const own = ts.preProcessFile(context.sourceCode.text, true, true).importedFiles;
        for (const { fileName, pos } of own) {
          if (!fileName.startsWith('.')) continue;
          const target = resolve(dirname(file), fileName);
          if (target === file) continue;
          const chain = chainBack(target, file, cannotReach);
          if (chain === undefined) continue;
          const names = [file, ...chain, file].map((f) => relative(context.cwd, f));
          context.report({
            loc: context.sourceCode.getLocFromIndex(pos),
            messageId: 'cycle',
            data: { chain: names.join(' → ') },
          });
        }
      },
    };
  },
};

export default { rules: { 'no-import-cycle': noImportCycle } };
