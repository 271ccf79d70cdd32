/**
 * The bounded fuzz run of `npm test` (fixed seed and case count; test/support/fuzzModels.ts):
 * mutated model files loaded and run by the CPU engines, and random webview messages validated.
 * Every case must end in a result or a clear error naming the file; the counts are printed.
 * A longer run: `npm run fuzz -- --cases 10000`.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { formatFuzzSummary, fuzzModels } from '../support/fuzzModels';
import { FIXTURE_MODELS, fixtureDir } from './fixtureModels';

test('fuzzed model files and webview messages end in a result or a clear error, never a crash, hang or memory blow-up', async () => {
  const summary = await fuzzModels({ cases: 2000, seed: 20261202, fixtures: FIXTURE_MODELS.map(fixtureDir) });
  console.log(formatFuzzSummary(summary));
  assert.equal(summary.byOutcome.crash, 0, summary.failures.join('\n'));
  assert.equal(summary.byOutcome.hang, 0, summary.failures.join('\n'));
  assert.equal(summary.byOutcome.memory, 0, summary.failures.join('\n'));
  assert.equal(summary.messages.threw, 0, summary.failures.join('\n'));
  // The mutations must actually exercise both outcomes.
  assert.ok(summary.byOutcome.clearError > 500 && summary.byOutcome.ran > 100, JSON.stringify(summary.byOutcome));
});
