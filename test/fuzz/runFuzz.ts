/**
 * `npm run fuzz -- [--cases N] [--seed S] [--webgpu]`: the model-file and message fuzzer of the test suite,
 * as long as you like. Prints the counts and every failure with what reproduces it; exits 1 on any
 * crash, hang or memory blow-up.
 */
import * as path from 'node:path';
import { formatFuzzSummary, fuzzModels } from '../support/fuzzModels';
import { requestNodeDevice } from '../../engine/hosts/nodeWebGpu';
import { GpuEngine, summarizeAdapter } from '../../engine/webgpu/gpuEngine';

const FIXTURES = ['llama-f32', 'llama-bf16', 'qwen2-f16', 'qwen2-sharded', 'gpt2-f32', 'gpt2-f16'];
const repoRoot = path.resolve(__dirname, '..', '..', '..');

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} expects a non-negative integer`);
  return value;
}

async function main(): Promise<void> {
  const cases = option('--cases', 2000);
  const seed = option('--seed', 20261202);
  let last = 0;
  // --webgpu: every model that loads also runs on the WebGPU engine (Dawn in Node).
  let gpuEngine: Parameters<typeof fuzzModels>[0]['gpuEngine'];
  if (process.argv.includes('--webgpu')) {
    const { adapter, device } = await requestNodeDevice();
    gpuEngine = (model) => GpuEngine.create(device, summarizeAdapter(adapter), model, { ownsDevice: false });
    console.log(`fuzz: with the WebGPU engine on ${adapter.info?.description || adapter.info?.vendor || 'the adapter'}`);
  }
  const summary = await fuzzModels({
    cases,
    seed,
    gpuEngine,
    fixtures: FIXTURES.map((name) => path.join(repoRoot, 'test', 'fixtures', 'models', name)),
    onProgress: (done) => {
      if (done - last >= 500) {
        last = done;
        process.stderr.write(`  ${done} of ${cases} cases\n`);
      }
    },
  });
  console.log(formatFuzzSummary(summary));
  const failed = summary.byOutcome.crash + summary.byOutcome.hang + summary.byOutcome.memory + summary.messages.threw;
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack ?? error.message : error);
  process.exit(1);
});
