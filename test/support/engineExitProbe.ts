/**
 * A caller that leaves without disposing its CPU engine (test/unit/engineProcess.test.ts runs it
 * as a program): it starts the engine's process, runs one analysis, prints the engine's process id
 * and exits at once, as an editor or CLI that is closed mid-use does.
 */
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { NodeOnnxEngine } from '../../engine/hosts/nodeOnnx';
import { fixtureDir, readGolden } from '../unit/fixtureModels';

async function main(): Promise<void> {
  const model = await loadModelFolder(fixtureDir('llama-f32'));
  const engine = await NodeOnnxEngine.create(model, { threads: 1, reason: 'exit probe' });
  await engine.run({ tokenIds: readGolden('llama-f32').tokenIds, spans: [], topK: 2 });
  process.stdout.write(`engine process ${engine.pid}\n`, () => process.exit(0));
}

void main();
