/**
 * The worker app as plain JavaScript: chaos/worker.ts with the library's source (lib/) and
 * devkit/ transpiled file by file with TypeScript (as ts-jest does) into a folder of
 * .tmp/. Worker processes then start with plain `node`: a replacement boots in about a third of
 * the time it takes under the tsx loader, and the resident memory measured is the app's, not the
 * loader's. The folder is inside the repository so that packages resolve from node_modules.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { onCleanUp } from '../devkit/processes.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface CompiledWorker {
  /** The worker's entry point (.js). */
  entry: string;
  remove(): Promise<void>;
}

let compiled: Promise<CompiledWorker> | undefined;

/** Compiles once per process; later calls get the same build. */
export function compileWorker(): Promise<CompiledWorker> {
  compiled ??= build().catch((error: unknown) => {
    compiled = undefined;
    throw error;
  });
  return compiled;
}

async function build(): Promise<CompiledWorker> {
  await mkdir(join(ROOT, '.tmp'), { recursive: true });
  const out = await mkdtemp(join(ROOT, '.tmp', 'chaos-worker-'));
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  const compilerOptions: ts.CompilerOptions = {
    ...options, module: ts.ModuleKind.ES2022, moduleResolution: ts.ModuleResolutionKind.Bundler,
    sourceMap: false, declaration: false, noEmit: false,
  };
  const sources = [...(await tsFiles(join(ROOT, 'lib'))), ...(await tsFiles(join(ROOT, 'devkit'))), join(ROOT, 'chaos', 'worker.ts')];
  for (const source of sources) {
    const { outputText } = ts.transpileModule(await readFile(source, 'utf8'), { compilerOptions, fileName: source });
    const target = join(out, relative(ROOT, source)).replace(/\.ts$/, '.js');
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, outputText);
  }
  const remove = async () => {
    compiled = undefined;
    await rm(out, { recursive: true, force: true });
  };
  onCleanUp(remove); // devkit's cleanUpWorkers() deletes the build
  return { entry: join(out, 'chaos', 'worker.js'), remove };
}

async function tsFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = resolve(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await tsFiles(path)));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}
